//! Gradient sharing for data-parallel training.
//!
//! - [`ThreadGroup`]: `N` threads of one process, each training its own copy of the
//!   weights as one rank, average their gradients through shared memory.
//! - [`ProcessGroup`]: `N` processes, on one machine or several, launched by `torchrun`
//!   or with the variables it sets (`RANK`, `WORLD_SIZE`, `MASTER_ADDR`, `MASTER_PORT`),
//!   average them over TCP through rank 0. Under `torchrun` the ranks find rank 0 through
//!   its agent's key-value store ([`agent_store`]).
//! - `nccl::NcclGroup` (feature `nccl`): the same launch on CUDA devices, with the
//!   gradients averaged by NCCL on the GPUs.
//!
//! Both sum in f64 in rank order, the same order on every rank, so all ranks get
//! bit-identical gradients and stay in lock-step, and the two give the same bits.

use std::io::{Read, Write};
use std::sync::{Barrier, Mutex};

use candle_core::{DType, Device, Tensor};

pub mod agent_store;
#[cfg(feature = "nccl")]
pub mod nccl;

use crate::error::{Error, Result};
use crate::trainer::GradientSync;

/// One rank's contribution: its gradients flattened to f32, and its loss.
type Contribution = (Vec<Vec<f32>>, f64);

/// The shared state of `world_size` threads; [`ThreadGroup::rank`] hands out each
/// thread's [`GradientSync`].
#[derive(Debug)]
pub struct ThreadGroup {
    world_size: usize,
    slots: Mutex<Vec<Option<Contribution>>>,
    message: Mutex<Vec<u8>>,
    barrier: Barrier,
}

impl ThreadGroup {
    /// A group of `world_size` ranks (at least 1).
    pub fn new(world_size: usize) -> Result<Self> {
        if world_size == 0 {
            return Err(Error::Group {
                rank: 0,
                world_size,
                detail: "a group has at least one rank".into(),
            });
        }
        Ok(ThreadGroup {
            world_size,
            slots: Mutex::new(vec![None; world_size]),
            message: Mutex::new(Vec::new()),
            barrier: Barrier::new(world_size),
        })
    }

    /// The [`GradientSync`] of rank `rank`.
    pub fn rank(&self, rank: usize) -> Result<ThreadRank<'_>> {
        let handle = ThreadRank { group: self, rank };
        if rank >= self.world_size {
            return Err(handle.fail("the rank is outside the group".into()));
        }
        Ok(handle)
    }
}

/// One thread's handle on a [`ThreadGroup`].
#[derive(Debug, Clone, Copy)]
pub struct ThreadRank<'a> {
    group: &'a ThreadGroup,
    rank: usize,
}

impl ThreadRank<'_> {
    fn fail(&self, detail: String) -> Error {
        group_error(self.rank, self.group.world_size)(detail)
    }

    fn poisoned(&self) -> Error {
        self.fail("another rank panicked while holding the gradients".into())
    }
}

impl GradientSync for ThreadRank<'_> {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.group.world_size
    }

    fn all_reduce_mean(&self, grads: Vec<Tensor>, loss: f64) -> Result<(Vec<Tensor>, f64)> {
        let flat = Flat::of(&grads)?;
        {
            let mut slots = self.group.slots.lock().map_err(|_| self.poisoned())?;
            slots[self.rank] = Some((flat.values.clone(), loss));
        }
        // Everyone has written.
        self.group.barrier.wait();
        let sum = {
            let slots = self.group.slots.lock().map_err(|_| self.poisoned())?;
            let mut sum = RankSum::new(&flat.values);
            for (rank, slot) in slots.iter().enumerate() {
                let (theirs, their_loss) = slot.as_ref().ok_or_else(|| {
                    self.fail(format!(
                        "rank {rank} reached the reduction without gradients"
                    ))
                })?;
                sum.add(theirs, *their_loss)
                    .map_err(|e| self.fail(format!("rank {rank} {e}")))?;
            }
            sum
        };
        // Everyone has read; the slots may be overwritten by the next step.
        self.group.barrier.wait();
        let (mean, mean_loss) = sum.mean(self.group.world_size);
        Ok((flat.rebuild(mean)?, mean_loss))
    }

    fn broadcast(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        if self.rank == 0 {
            *self.group.message.lock().map_err(|_| self.poisoned())? = message;
        }
        // Rank 0 has written.
        self.group.barrier.wait();
        let received = self
            .group
            .message
            .lock()
            .map_err(|_| self.poisoned())?
            .clone();
        // Everyone has read; the next broadcast may overwrite it.
        self.group.barrier.wait();
        Ok(received)
    }
}

/// Gradients flattened to f32 values, with what it takes to rebuild the tensors.
struct Flat {
    shapes: Vec<(Vec<usize>, DType, Device)>,
    values: Vec<Vec<f32>>,
}

impl Flat {
    fn of(grads: &[Tensor]) -> Result<Self> {
        let shapes = grads
            .iter()
            .map(|g| (g.dims().to_vec(), g.dtype(), g.device().clone()))
            .collect();
        let values = grads
            .iter()
            .map(|g| g.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>())
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Flat { shapes, values })
    }

    /// Tensors of the original shapes, dtypes and devices holding `values`.
    fn rebuild(&self, values: Vec<Vec<f32>>) -> Result<Vec<Tensor>> {
        Ok(values
            .into_iter()
            .zip(&self.shapes)
            .map(|(v, (dims, dtype, device))| {
                Tensor::from_vec(v, dims.as_slice(), &Device::Cpu)?
                    .to_dtype(*dtype)?
                    .to_device(device)
            })
            .collect::<candle_core::Result<Vec<_>>>()?)
    }
}

/// The f64 sum of every rank's gradients and loss, added in rank order.
struct RankSum {
    grads: Vec<Vec<f64>>,
    loss: f64,
}

impl RankSum {
    /// Zeros shaped like `like`.
    fn new(like: &[Vec<f32>]) -> Self {
        RankSum {
            grads: like.iter().map(|g| vec![0.0; g.len()]).collect(),
            loss: 0.0,
        }
    }

    /// Adds one rank's contribution; an error says what does not match.
    fn add(&mut self, grads: &[Vec<f32>], loss: f64) -> std::result::Result<(), String> {
        if grads.len() != self.grads.len()
            || grads
                .iter()
                .zip(&self.grads)
                .any(|(g, s)| g.len() != s.len())
        {
            return Err("sent gradients of other shapes".into());
        }
        for (sum, grad) in self.grads.iter_mut().zip(grads) {
            for (s, &g) in sum.iter_mut().zip(grad) {
                *s += f64::from(g);
            }
        }
        self.loss += loss;
        Ok(())
    }

    fn mean(self, world_size: usize) -> (Vec<Vec<f32>>, f64) {
        let world = world_size as f64;
        let grads = self
            .grads
            .into_iter()
            .map(|sum| sum.into_iter().map(|s| (s / world) as f32).collect())
            .collect();
        (grads, self.loss / world)
    }
}

fn group_error(rank: usize, world_size: usize) -> impl Fn(String) -> Error {
    move |detail| Error::Group {
        rank,
        world_size,
        detail,
    }
}

/// The launcher's variables a process of a multi-process run reads, as `torchrun`, Slurm
/// templates and Kubernetes jobs set them.
pub const ENV_RANK: &str = "RANK";
/// Number of processes.
pub const ENV_WORLD_SIZE: &str = "WORLD_SIZE";
/// Host of rank 0, which the others connect to.
pub const ENV_MASTER_ADDR: &str = "MASTER_ADDR";
/// Port rank 0 listens on.
pub const ENV_MASTER_PORT: &str = "MASTER_PORT";

/// How long ranks wait for each other to start, and for a step's gradients.
const RENDEZVOUS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// The processes of one data-parallel run, connected over TCP in a star around rank 0.
///
/// Each step every rank sends its gradients and loss to rank 0, which sums them in f64 in
/// rank order (as [`ThreadGroup`] does, so both give the same bits) and sends the mean back.
/// It carries CPU runs across machines and is the reference for a GPU collective.
#[derive(Debug)]
pub struct ProcessGroup {
    rank: usize,
    world_size: usize,
    /// Rank 0: one stream per other rank, in rank order. Other ranks: the stream to rank 0.
    streams: Vec<Mutex<std::net::TcpStream>>,
}

impl ProcessGroup {
    /// The group the launcher's variables describe ([`ENV_RANK`], [`ENV_WORLD_SIZE`],
    /// [`ENV_MASTER_ADDR`], [`ENV_MASTER_PORT`]); `None` when `WORLD_SIZE` is unset or 1.
    pub fn from_env() -> Result<Option<Self>> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(world) = var(ENV_WORLD_SIZE) else {
            return Ok(None);
        };
        let parse = |name: &str, value: &str| {
            value.trim().parse::<usize>().map_err(|_| Error::Config {
                what: "data-parallel launch",
                reason: format!("{name}={value:?} is not a non-negative integer"),
            })
        };
        let world_size = parse(ENV_WORLD_SIZE, &world)?;
        if world_size <= 1 {
            return Ok(None);
        }
        let missing = |name: &str| Error::Config {
            what: "data-parallel launch",
            reason: format!("{ENV_WORLD_SIZE}={world_size} but {name} is not set"),
        };
        let rank = parse(ENV_RANK, &var(ENV_RANK).ok_or_else(|| missing(ENV_RANK))?)?;
        let host = var(ENV_MASTER_ADDR).ok_or_else(|| missing(ENV_MASTER_ADDR))?;
        let port = var(ENV_MASTER_PORT).ok_or_else(|| missing(ENV_MASTER_PORT))?;
        let port = u16::try_from(parse(ENV_MASTER_PORT, &port)?).map_err(|_| Error::Config {
            what: "data-parallel launch",
            reason: format!("{ENV_MASTER_PORT}={port} is not a port"),
        })?;
        let master = format!("{host}:{port}");
        if agent_store::in_use() {
            Self::connect_through_agent_store(
                rank,
                world_size,
                &master,
                &agent_store::rendezvous_key(),
            )
        } else {
            Self::connect(rank, world_size, &master)
        }
        .map(Some)
    }

    /// Joins the group: rank 0 listens on `master`, the others connect to it.
    pub fn connect(rank: usize, world_size: usize, master: &str) -> Result<Self> {
        let fail = group_error(rank, world_size);
        if world_size == 0 || rank >= world_size {
            return Err(fail("the rank is outside the group".into()));
        }
        let deadline = std::time::Instant::now() + RENDEZVOUS_TIMEOUT;
        if rank == 0 {
            let listener = std::net::TcpListener::bind(master)
                .map_err(|e| fail(format!("listening on {master}: {e}")))?;
            Self::accept_ranks(world_size, listener, master)
        } else {
            Self::join_rank_0(rank, world_size, master, deadline)
        }
    }

    /// Joins the group under `torchrun`, whose agent serves a key-value store on `store`
    /// (its `MASTER_ADDR:MASTER_PORT`): rank 0 listens on a free port of the interface that
    /// reaches the store and publishes the address under `key`; the others read it there.
    pub fn connect_through_agent_store(
        rank: usize,
        world_size: usize,
        store: &str,
        key: &str,
    ) -> Result<Self> {
        let fail = group_error(rank, world_size);
        if world_size == 0 || rank >= world_size {
            return Err(fail("the rank is outside the group".into()));
        }
        let deadline = std::time::Instant::now() + RENDEZVOUS_TIMEOUT;
        let mut agent = agent_store::AgentStore::connect(store, deadline)
            .map_err(|e| fail(format!("torchrun's store at {store}: {e}")))?;
        if rank == 0 {
            let ip = agent
                .local_ip()
                .map_err(|e| fail(format!("torchrun's store at {store}: {e}")))?;
            let listener = std::net::TcpListener::bind((ip, 0))
                .map_err(|e| fail(format!("listening on {ip}: {e}")))?;
            let address = listener
                .local_addr()
                .map_err(|e| fail(format!("listening on {ip}: {e}")))?
                .to_string();
            agent
                .set(key, address.as_bytes())
                .map_err(|e| fail(format!("publishing {address} in torchrun's store: {e}")))?;
            Self::accept_ranks(world_size, listener, &address)
        } else {
            let address = agent.wait_get(key, deadline).map_err(|e| {
                fail(format!(
                    "reading rank 0's address from torchrun's store: {e}"
                ))
            })?;
            let address = String::from_utf8(address)
                .map_err(|_| fail("rank 0's address in torchrun's store is not text".into()))?;
            Self::join_rank_0(rank, world_size, &address, deadline)
        }
    }

    /// Rank 0: accepts the other ranks, each greeting with its rank.
    fn accept_ranks(
        world_size: usize,
        listener: std::net::TcpListener,
        master: &str,
    ) -> Result<Self> {
        let fail = group_error(0, world_size);
        let mut peers: Vec<Option<std::net::TcpStream>> = (1..world_size).map(|_| None).collect();
        for _ in 1..world_size {
            let (mut stream, from) = listener
                .accept()
                .map_err(|e| fail(format!("accepting on {master}: {e}")))?;
            let their_rank = read_u64(&mut stream)
                .map_err(|e| fail(format!("greeting from {from}: {e}")))?
                as usize;
            let slot = their_rank
                .checked_sub(1)
                .and_then(|i| peers.get_mut(i))
                .filter(|s| s.is_none())
                .ok_or_else(|| {
                    fail(format!("{from} claims rank {their_rank}, taken or outside"))
                })?;
            *slot = Some(stream);
        }
        let streams = peers
            .into_iter()
            .map(|s| {
                s.map(Mutex::new)
                    .ok_or_else(|| fail("a rank is missing".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        Self::configured(0, world_size, streams)
    }

    /// A rank other than 0: connects to rank 0 at `master` and greets with its rank.
    fn join_rank_0(
        rank: usize,
        world_size: usize,
        master: &str,
        deadline: std::time::Instant,
    ) -> Result<Self> {
        let fail = group_error(rank, world_size);
        let mut stream = agent_store::connect_until(master, deadline, "rank 0")
            .map_err(|e| fail(format!("connecting to rank 0 at {master}: {e}")))?;
        write_u64(&mut stream, rank as u64).map_err(|e| fail(format!("greeting rank 0: {e}")))?;
        Self::configured(rank, world_size, vec![Mutex::new(stream)])
    }

    fn configured(
        rank: usize,
        world_size: usize,
        streams: Vec<Mutex<std::net::TcpStream>>,
    ) -> Result<Self> {
        let fail = group_error(rank, world_size);
        for stream in &streams {
            let stream = stream
                .lock()
                .map_err(|_| fail("a stream lock is poisoned".into()))?;
            stream
                .set_nodelay(true)
                .and_then(|()| stream.set_read_timeout(Some(RENDEZVOUS_TIMEOUT)))
                .map_err(|e| fail(format!("configuring the connection: {e}")))?;
        }
        Ok(ProcessGroup {
            rank,
            world_size,
            streams,
        })
    }

    fn fail(&self, detail: String) -> Error {
        group_error(self.rank, self.world_size)(detail)
    }

    fn stream(&self, i: usize) -> Result<std::sync::MutexGuard<'_, std::net::TcpStream>> {
        self.streams
            .get(i)
            .ok_or_else(|| self.fail(format!("no connection {i}")))?
            .lock()
            .map_err(|_| self.fail("a stream lock is poisoned".into()))
    }
}

impl GradientSync for ProcessGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_mean(&self, grads: Vec<Tensor>, loss: f64) -> Result<(Vec<Tensor>, f64)> {
        let flat = Flat::of(&grads)?;
        let (mean, mean_loss) = if self.rank == 0 {
            let mut sum = RankSum::new(&flat.values);
            sum.add(&flat.values, loss).map_err(|e| self.fail(e))?;
            for peer in 1..self.world_size {
                let mut stream = self.stream(peer - 1)?;
                let (theirs, their_loss) = read_frame(&mut *stream)
                    .map_err(|e| self.fail(format!("receiving from rank {peer}: {e}")))?;
                sum.add(&theirs, their_loss)
                    .map_err(|e| self.fail(format!("rank {peer} {e}")))?;
            }
            let (mean, mean_loss) = sum.mean(self.world_size);
            let frame = encode_frame(&mean, mean_loss);
            for peer in 1..self.world_size {
                self.stream(peer - 1)?
                    .write_all(&frame)
                    .map_err(|e| self.fail(format!("sending to rank {peer}: {e}")))?;
            }
            (mean, mean_loss)
        } else {
            let mut stream = self.stream(0)?;
            stream
                .write_all(&encode_frame(&flat.values, loss))
                .map_err(|e| self.fail(format!("sending to rank 0: {e}")))?;
            read_frame(&mut *stream)
                .map_err(|e| self.fail(format!("receiving from rank 0: {e}")))?
        };
        if mean.len() != flat.values.len() {
            return Err(self.fail("the mean has another number of gradients".into()));
        }
        Ok((flat.rebuild(mean)?, mean_loss))
    }

    fn broadcast(&self, message: Vec<u8>) -> Result<Vec<u8>> {
        if self.rank == 0 {
            let mut frame = Vec::with_capacity(16 + message.len());
            frame.extend_from_slice(&BROADCAST_TAG.to_le_bytes());
            frame.extend_from_slice(&(message.len() as u64).to_le_bytes());
            frame.extend_from_slice(&message);
            for peer in 1..self.world_size {
                self.stream(peer - 1)?
                    .write_all(&frame)
                    .map_err(|e| self.fail(format!("sending to rank {peer}: {e}")))?;
            }
            Ok(message)
        } else {
            let mut stream = self.stream(0)?;
            read_broadcast(&mut *stream)
                .map_err(|e| self.fail(format!("receiving from rank 0: {e}")))
        }
    }
}

/// First word of a broadcast frame: a rank that expected one and reads a gradient frame
/// (or the reverse) has left the lock-step, and says so instead of misreading the bytes.
const BROADCAST_TAG: u64 = u64::from_le_bytes(*b"anchorBC");

/// First word of a gradient frame, for the same reason.
const GRADIENT_TAG: u64 = u64::from_le_bytes(*b"anchorGR");

/// Largest broadcast message, in bytes.
const MAX_BROADCAST_BYTES: u64 = 1 << 20;

fn read_broadcast(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    expect_tag(r, BROADCAST_TAG, "rank 0's message")?;
    let len = read_u64(r)?;
    if len > MAX_BROADCAST_BYTES {
        return Err(invalid(format!("a message announces {len} bytes")));
    }
    let mut message = vec![0u8; len as usize];
    r.read_exact(&mut message)?;
    Ok(message)
}

/// Reads a frame's first word and fails unless it is `tag`, the frame `what` names.
fn expect_tag(r: &mut impl Read, tag: u64, what: &str) -> std::io::Result<()> {
    if read_u64(r)? != tag {
        return Err(invalid(format!(
            "expected {what}, got other data: the ranks are out of step"
        )));
    }
    Ok(())
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

fn write_u64(w: &mut impl Write, v: u64) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// [`GRADIENT_TAG`], `loss` (f64 bits), the number of gradients, then each as its length
/// and f32 values, all little-endian.
fn encode_frame(grads: &[Vec<f32>], loss: f64) -> Vec<u8> {
    let values: usize = grads.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(24 + 8 * grads.len() + 4 * values);
    out.extend_from_slice(&GRADIENT_TAG.to_le_bytes());
    out.extend_from_slice(&loss.to_bits().to_le_bytes());
    out.extend_from_slice(&(grads.len() as u64).to_le_bytes());
    for g in grads {
        out.extend_from_slice(&(g.len() as u64).to_le_bytes());
        for x in g {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Largest gradient (in values) a frame may announce: a bad peer cannot make this
/// process allocate without bound.
const MAX_FRAME_VALUES: u64 = 1 << 34;

fn read_frame(r: &mut impl Read) -> std::io::Result<Contribution> {
    expect_tag(r, GRADIENT_TAG, "gradients")?;
    let loss = f64::from_bits(read_u64(r)?);
    let count = read_u64(r)?;
    if count > MAX_FRAME_VALUES {
        return Err(invalid(format!("a frame announces {count} gradients")));
    }
    let mut grads = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut total = 0u64;
    for _ in 0..count {
        let len = read_u64(r)?;
        total = total.saturating_add(len);
        if total > MAX_FRAME_VALUES {
            return Err(invalid(format!("a frame announces {total} values")));
        }
        let mut bytes = vec![0u8; len as usize * 4];
        r.read_exact(&mut bytes)?;
        grads.push(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        );
    }
    Ok((grads, loss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_truncation_is_an_error() {
        let grads = vec![vec![1.0f32, -2.5, 3.25], vec![], vec![f32::MIN_POSITIVE]];
        let frame = encode_frame(&grads, 0.125);
        let (back, loss) = read_frame(&mut frame.as_slice()).unwrap();
        assert_eq!((back, loss), (grads, 0.125));
        for cut in [0, 7, 15, 23, frame.len() - 1] {
            assert!(read_frame(&mut &frame[..cut]).is_err(), "cut at {cut}");
        }
        // A broadcast where gradients were expected.
        let mut message = BROADCAST_TAG.to_le_bytes().to_vec();
        message.extend_from_slice(&1u64.to_le_bytes());
        message.push(7);
        let err = read_frame(&mut message.as_slice()).unwrap_err();
        assert!(err.to_string().contains("out of step"), "{err}");
    }

    #[test]
    fn broadcast_frames_are_tagged_and_bounded() {
        let mut frame = BROADCAST_TAG.to_le_bytes().to_vec();
        frame.extend_from_slice(&3u64.to_le_bytes());
        frame.extend_from_slice(b"abc");
        assert_eq!(read_broadcast(&mut frame.as_slice()).unwrap(), b"abc");
        assert!(read_broadcast(&mut &frame[..frame.len() - 1]).is_err());
        // A gradient frame where a message was expected.
        let grads = encode_frame(&[vec![1.0]], 0.5);
        let err = read_broadcast(&mut grads.as_slice()).unwrap_err();
        assert!(err.to_string().contains("out of step"), "{err}");
        let mut huge = BROADCAST_TAG.to_le_bytes().to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_broadcast(&mut huge.as_slice()).is_err());
    }

    #[test]
    fn a_frame_announcing_absurd_sizes_is_refused_before_allocating() {
        let mut frame = GRADIENT_TAG.to_le_bytes().to_vec();
        frame.extend_from_slice(&0f64.to_bits().to_le_bytes());
        frame.extend_from_slice(&1u64.to_le_bytes());
        frame.extend_from_slice(&u64::MAX.to_le_bytes());
        let err = read_frame(&mut frame.as_slice()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
