//! A client of the key-value store that `torchrun`'s agent serves on `MASTER_PORT`
//! (PyTorch's `TCPStore`), just enough to meet through it.
//!
//! Under `torchrun` the agent already listens on `MASTER_PORT` and tells its workers so with
//! `TORCHELASTIC_USE_AGENT_STORE=True`. Rank 0 then listens on a free port of its own and
//! publishes that address in the store; the other ranks wait for the key and connect to it.
//!
//! The wire format is the store's: a one-byte query type, then its arguments, where a string
//! or byte string is a little-endian `u64` length and the bytes. A connection first sends
//! `VALIDATE` with the store's magic number; `PING` echoes a nonce, which proves the peer
//! speaks the protocol before anything is stored. PyTorch's clients put `/` before every
//! key, so this one does too and its keys read the same from Python.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

/// The environment variable `torchrun` sets when its agent serves the store on `MASTER_PORT`.
pub const ENV_USE_AGENT_STORE: &str = "TORCHELASTIC_USE_AGENT_STORE";
/// Names the elastic run; part of the key, so two jobs sharing a store do not meet.
pub const ENV_RUN_ID: &str = "TORCHELASTIC_RUN_ID";
/// Counts the agent's restarts of the workers; part of the key, so a restarted group does
/// not read the address of the group before it.
pub const ENV_RESTART_COUNT: &str = "TORCHELASTIC_RESTART_COUNT";

const VALIDATION_MAGIC: u32 = 0x3C85_F7CE;

/// What PyTorch's `TCPStore` client puts before every key.
const KEY_PREFIX: &str = "/";

/// The store's query types, in the order of its `QueryType` enum.
#[repr(u8)]
#[derive(Clone, Copy)]
enum Query {
    Validate = 0,
    Set = 1,
    Get = 3,
    Check = 5,
    Ping = 13,
}

/// `CHECK`'s answer when every key is present.
const READY: u8 = 0;

/// Whether the launcher's variables say that `MASTER_PORT` is the agent's store.
pub fn in_use() -> bool {
    std::env::var(ENV_USE_AGENT_STORE)
        .map(|v| matches!(v.trim(), "True" | "true" | "1"))
        .unwrap_or(false)
}

/// The key rank 0 publishes its address under, for this run and restart.
pub fn rendezvous_key() -> String {
    let var = |name| std::env::var(name).unwrap_or_default();
    format!(
        "anchor/train/{}/{}/rank0",
        var(ENV_RUN_ID),
        var(ENV_RESTART_COUNT)
    )
}

/// One validated connection to the store.
pub struct AgentStore {
    stream: TcpStream,
}

impl AgentStore {
    /// Connects to the store at `address` (retrying until `deadline`, as the agent may still
    /// be starting), validates the connection and checks that the store answers a ping.
    pub fn connect(address: &str, deadline: Instant) -> std::io::Result<Self> {
        let stream = connect_until(address, deadline, "the agent's store")?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut store = AgentStore { stream };
        let mut hello = vec![Query::Validate as u8];
        hello.extend_from_slice(&VALIDATION_MAGIC.to_le_bytes());
        let nonce = std::process::id();
        hello.push(Query::Ping as u8);
        hello.extend_from_slice(&nonce.to_le_bytes());
        store.stream.write_all(&hello)?;
        let mut echo = [0u8; 4];
        store.stream.read_exact(&mut echo)?;
        if u32::from_le_bytes(echo) != nonce {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{address} does not answer as torchrun's store"),
            ));
        }
        Ok(store)
    }

    /// The address this side of the connection has: the interface that reaches the store,
    /// which is where rank 0 listens for the other ranks.
    pub fn local_ip(&self) -> std::io::Result<IpAddr> {
        Ok(self.stream.local_addr()?.ip())
    }

    /// Stores `value` under `key`.
    pub fn set(&mut self, key: &str, value: &[u8]) -> std::io::Result<()> {
        let mut query = vec![Query::Set as u8];
        put_key(&mut query, key);
        put_bytes(&mut query, value);
        self.stream.write_all(&query)
    }

    /// Whether `key` is present.
    pub fn check(&mut self, key: &str) -> std::io::Result<bool> {
        let mut query = vec![Query::Check as u8];
        query.extend_from_slice(&1u64.to_le_bytes());
        put_key(&mut query, key);
        self.stream.write_all(&query)?;
        let mut answer = [0u8; 1];
        self.stream.read_exact(&mut answer)?;
        Ok(answer[0] == READY)
    }

    /// The value of a present `key`.
    pub fn get(&mut self, key: &str) -> std::io::Result<Vec<u8>> {
        let mut query = vec![Query::Get as u8];
        put_key(&mut query, key);
        self.stream.write_all(&query)?;
        let mut len = [0u8; 8];
        self.stream.read_exact(&mut len)?;
        let len = u64::from_le_bytes(len);
        if len > MAX_VALUE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the store announces a {len}-byte value"),
            ));
        }
        let mut value = vec![0u8; len as usize];
        self.stream.read_exact(&mut value)?;
        Ok(value)
    }

    /// Waits until `key` is present (polling, as the store's own clients do for `get`) and
    /// returns its value.
    pub fn wait_get(&mut self, key: &str, deadline: Instant) -> std::io::Result<Vec<u8>> {
        while !self.check(key)? {
            if Instant::now() >= deadline {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{key} did not appear in the store"),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.get(key)
    }
}

/// Connects to `address`, retrying every 100 ms until `deadline` while the peer (`what`)
/// may still be starting.
pub(crate) fn connect_until(
    address: &str,
    deadline: Instant,
    what: &str,
) -> std::io::Result<TcpStream> {
    loop {
        match TcpStream::connect(address) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, address, "waiting for {what}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

/// An address is all a value holds here.
const MAX_VALUE_BYTES: u64 = 4096;

fn put_key(out: &mut Vec<u8>, key: &str) {
    let key = format!("{KEY_PREFIX}{key}");
    put_bytes(out, key.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}
