//! Data-parallel training with the in-process all-reduce (`N` threads, each a rank with its
//! own copy of a tiny SD-shaped UNet) equals one process training with `N ×` the batch:
//! same log, same weights, to float tolerance.

use anchor_sd::{NoiseSchedule, Prediction, UNet2DConditionModel, UNetConfig, Weights};
use anchor_train::objective::{DiffusionObjective, LatentSet};
use anchor_train::optim::{AdamWConfig, Params};
use anchor_train::parallel::{ProcessGroup, ThreadGroup};
use anchor_train::rng::Rng;
use anchor_train::trainer::GradientSync;
use anchor_train::trainer::{
    Checkpoints, LogRow, LoopConfig, Schedule, train, train_data_parallel,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

const EXAMPLES: usize = 6;
const LATENT_SIDE: usize = 8;
const TOKENS: usize = 5;

/// Fixed random latents (with their flipped rows) and text embeddings.
fn data() -> (LatentSet, Tensor) {
    let mut rng = Rng::new(7, 1);
    let latent_shape = (2 * EXAMPLES, 4, LATENT_SIDE, LATENT_SIDE);
    let count = 2 * EXAMPLES * 4 * LATENT_SIDE * LATENT_SIDE;
    let mean = Tensor::from_vec(rng.normals(count), latent_shape, &Device::Cpu).unwrap();
    let logvar = Tensor::from_vec(rng.normals(count), latent_shape, &Device::Cpu)
        .unwrap()
        .affine(0.1, -2.0)
        .unwrap();
    let dim = UNetConfig::tiny().cross_attention_dim;
    let embeddings = Tensor::from_vec(
        rng.normals(EXAMPLES * TOKENS * dim),
        (EXAMPLES, TOKENS, dim),
        &Device::Cpu,
    )
    .unwrap();
    let latents = LatentSet {
        mean,
        logvar,
        n: EXAMPLES,
        scaling_factor: 0.18215,
    };
    (latents, embeddings)
}

/// A freshly initialised tiny UNet (the same weights on every call).
fn unet() -> (UNet2DConditionModel, Params) {
    let vm = VarMap::new();
    let unet = UNet2DConditionModel::new(
        Weights::new(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)),
        UNetConfig::tiny(),
    )
    .unwrap();
    let params = Params::from_varmap(&vm, |_| true).unwrap();
    params.reinit(11).unwrap();
    (unet, params)
}

fn config(batch_size: usize) -> LoopConfig {
    LoopConfig {
        schedule: Schedule {
            steps: 3,
            batch_size,
            grad_accum: 2,
            lr: 1e-3,
            warmup: 1,
            max_grad_norm: 1.0,
        },
        adamw: AdamWConfig::default(),
        seed: 5,
        checkpoint_every: 0,
        loss_scaling: false,
    }
}

/// Trains and returns the log and the final weights.
fn run(
    batch_size: usize,
    ckpt_dir: &std::path::Path,
    sync: Option<&dyn GradientSync>,
) -> (Vec<LogRow>, Vec<(String, Vec<f32>)>) {
    let (latents, embeddings) = data();
    let (unet, params) = unet();
    let schedule = NoiseSchedule::sd(Prediction::Epsilon);
    let objective = DiffusionObjective {
        unet: &unet,
        schedule: &schedule,
        latents: &latents,
        embeddings: &embeddings,
        min_snr_gamma: Some(5.0),
        cond_dropout: None,
    };
    let ckpt = Checkpoints {
        dir: ckpt_dir.to_path_buf(),
        run_key: "data-parallel".into(),
    };
    let report = match sync {
        None => train(
            &config(batch_size),
            &params,
            &objective,
            &ckpt,
            None,
            |_| Ok(()),
        ),
        Some(sync) => train_data_parallel(
            &config(batch_size),
            &params,
            &objective,
            &ckpt,
            None,
            sync,
            |_| Ok(()),
        ),
    }
    .unwrap();
    let weights = params
        .tensors()
        .into_iter()
        .map(|(name, t)| (name, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    (report.log, weights)
}

#[test]
fn two_ranks_of_batch_two_equal_one_process_of_batch_four() {
    const WORLD: usize = 2;
    const BATCH: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let (single_log, single_weights) = run(WORLD * BATCH, &dir.path().join("single"), None);

    let group = ThreadGroup::new(WORLD).unwrap();
    let shared = dir.path().join("parallel");
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORLD)
            .map(|r| {
                let (group, shared) = (&group, &shared);
                scope.spawn(move || {
                    let rank = group.rank(r).unwrap();
                    run(BATCH, shared, Some(&rank))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // Every rank holds the same weights and log: they are one run.
    assert_eq!(results[0], results[1]);
    let (log, weights) = &results[0];
    assert_eq!(log.len(), single_log.len());
    for (a, b) in log.iter().zip(&single_log) {
        assert_eq!((a.step, a.epoch), (b.step, b.epoch));
        assert!(
            (a.loss - b.loss).abs() <= 1e-5 * b.loss.abs().max(1.0),
            "{a:?} vs {b:?}"
        );
        assert!(
            (a.grad_norm - b.grad_norm).abs() <= 1e-5 * b.grad_norm.max(1.0),
            "{a:?} vs {b:?}"
        );
        assert_eq!(a.lr, b.lr);
    }
    let mut max_diff = 0f32;
    let mut moved = 0f32;
    let initial: Vec<Vec<f32>> = unet()
        .1
        .tensors()
        .into_iter()
        .map(|(_, t)| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
        .collect();
    for (((name, ours), (single_name, theirs)), start) in
        weights.iter().zip(&single_weights).zip(&initial)
    {
        assert_eq!(name, single_name);
        for ((a, b), s) in ours.iter().zip(theirs).zip(start) {
            max_diff = max_diff.max((a - b).abs());
            moved = moved.max((b - s).abs());
        }
    }
    eprintln!("largest weight difference {max_diff:e}; largest weight change {moved:e}");
    // Training moved the weights, and both runs moved them the same way.
    assert!(
        moved > 1e-4,
        "training did not change the weights ({moved})"
    );
    assert!(max_diff <= 1e-5, "largest weight difference {max_diff}");
}

#[test]
fn a_rank_outside_the_group_is_refused() {
    let group = ThreadGroup::new(2).unwrap();
    assert!(group.rank(2).is_err());
    assert!(ThreadGroup::new(0).is_err());
}

#[test]
fn processes_over_tcp_give_the_bits_of_the_thread_group() {
    const WORLD: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let group = ThreadGroup::new(WORLD).unwrap();
    let threads: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORLD)
            .map(|r| {
                let (group, ckpt) = (&group, dir.path().join("threads"));
                scope.spawn(move || run(1, &ckpt, Some(&group.rank(r).unwrap())))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // A free port on the loopback interface for rank 0.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master = format!("127.0.0.1:{port}");
    let tcp: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORLD)
            .map(|r| {
                let (master, ckpt) = (&master, dir.path().join("tcp"));
                scope.spawn(move || {
                    let group = ProcessGroup::connect(r, WORLD, master).unwrap();
                    run(1, &ckpt, Some(&group))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(tcp[0], threads[0]);
    assert!(tcp.iter().all(|r| r == &tcp[0]));
}

#[test]
fn a_rank_outside_the_process_group_is_refused() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = ProcessGroup::connect(5, 2, &format!("127.0.0.1:{port}")).unwrap_err();
    assert!(err.to_string().contains("outside the group"), "{err}");
}

/// PyTorch's own `TCPStore`, the store `torchrun`'s agent serves: ranks meet through it as
/// they do under `torchrun`, and the address rank 0 published is readable from PyTorch.
#[test]
fn ranks_meet_through_pytorchs_store_as_under_torchrun() {
    let Some(python) = std::env::var_os("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set (a Python with torch)");
        return;
    };
    const WORLD: usize = 3;
    const KEY: &str = "anchor/train/test-run/0/rank0";
    let serve = format!(
        "import os, sys, torch.distributed as dist\n\
         store = dist.TCPStore('127.0.0.1', 0, is_master=True, wait_for_workers=False)\n\
         print(store.port, flush=True)\n\
         sys.stdin.read()\n\
         print(store.get('{KEY}').decode(), flush=True)\n\
         os._exit(0)\n"
    );
    let mut server = std::process::Command::new(python)
        .args(["-c", &serve])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let store = format!("127.0.0.1:{}", line.trim());

    let losses: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORLD)
            .map(|r| {
                let store = &store;
                scope.spawn(move || {
                    let group =
                        ProcessGroup::connect_through_agent_store(r, WORLD, store, KEY).unwrap();
                    let grads = vec![Tensor::new(&[r as f32, 1.0], &Device::Cpu).unwrap()];
                    let (mean, loss) = group.all_reduce_mean(grads, r as f64).unwrap();
                    assert_eq!(mean[0].to_vec1::<f32>().unwrap(), [1.0, 1.0]);
                    assert_eq!(group.broadcast(vec![r as u8]).unwrap(), [0]);
                    loss
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(losses, [1.0; WORLD]);

    drop(server.stdin.take());
    let mut published = String::new();
    std::io::Read::read_to_string(&mut out, &mut published).unwrap();
    assert!(server.wait().unwrap().success());
    let published: std::net::SocketAddr = published.trim().parse().unwrap();
    assert_eq!(published.ip().to_string(), "127.0.0.1");
}

#[test]
fn a_port_that_is_not_torchruns_store_is_named() {
    // A listener that accepts and closes: no validation, no ping echo.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let closer = std::thread::spawn(move || drop(listener.accept().unwrap()));
    let err = ProcessGroup::connect_through_agent_store(0, 2, &address, "k").unwrap_err();
    closer.join().unwrap();
    assert!(err.to_string().contains("torchrun's store"), "{err}");
}
