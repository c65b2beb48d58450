//! A small unpickler for the pickles inside TorchScript archives.
//!
//! It understands the protocol-2 opcodes `torch.jit.save` writes (nested module objects
//! built with `NEWOBJ` + `BUILD`, tensors as `_rebuild_tensor_v2` calls over persistent
//! storage ids) plus the common protocol 3/4 ones. It executes nothing: globals stay
//! names, and calls other than the few tensor/list/dict builders stay `Value::Call`.

use crate::{Error, Result};

/// A decoded pickle value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dict, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A global reference (`module`, `name`).
    Global(String, String),
    /// An object built from a class and then given a state (`NEWOBJ` + `BUILD`).
    Object {
        /// `module.Class` of the object.
        class: String,
        /// The `BUILD` state, usually a dict of attributes.
        state: Box<Value>,
    },
    /// A call that is not decoded further.
    Call(Box<Value>, Box<Value>),
    /// A persistent id (tensor storages).
    PersistentId(Box<Value>),
    /// A tensor view over a storage entry.
    Tensor(TensorRef),
}

/// What `_rebuild_tensor_v2(storage, offset, size, stride, ...)` describes.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Storage key: the archive entry is `data/<key>`.
    pub storage: String,
    /// Storage class name (`FloatStorage`, ...).
    pub storage_type: String,
    /// Offset into the storage, in elements.
    pub offset: usize,
    /// Shape.
    pub size: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

impl Value {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Elements of a tuple or list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(v) | Value::List(v) => Some(v),
            _ => None,
        }
    }
}

enum Item {
    Mark,
    Value(Value),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    entry: &'a str,
    stack: Vec<Item>,
    memo: std::collections::HashMap<u32, Value>,
}

/// Decodes one pickle stream; `entry` names it in errors.
pub fn unpickle(data: &[u8], entry: &str) -> Result<Value> {
    let mut m = Machine {
        data,
        pos: 0,
        entry,
        stack: Vec::new(),
        memo: Default::default(),
    };
    m.run()
}

impl<'a> Machine<'a> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Pickle {
            entry: self.entry.to_string(),
            offset: self.pos,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| self.err("truncated stream"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N)?);
        Ok(b)
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| self.err("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn string(&mut self, n: usize) -> Result<Value> {
        let bytes = self.take(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| self.err("string is not UTF-8"))?;
        Ok(Value::Str(s.to_string()))
    }

    fn push(&mut self, v: Value) {
        self.stack.push(Item::Value(v));
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            Some(Item::Mark) => Err(self.err("unexpected mark")),
            None => Err(self.err("stack underflow")),
        }
    }

    fn top(&mut self) -> Result<&mut Value> {
        match self.stack.last_mut() {
            Some(Item::Value(v)) => Ok(v),
            _ => Err(Error::Pickle {
                entry: self.entry.to_string(),
                offset: self.pos,
                reason: "no value on the stack".into(),
            }),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let at = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| self.err("no mark"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .filter_map(|i| {
                if let Item::Value(v) = i {
                    Some(v)
                } else {
                    None
                }
            })
            .collect())
    }

    fn memo_get(&self, k: u32) -> Result<Value> {
        self.memo
            .get(&k)
            .cloned()
            .ok_or_else(|| self.err(format!("memo key {k} is unset")))
    }

    fn memo_put(&mut self, k: u32) -> Result<()> {
        let v = match self.stack.last() {
            Some(Item::Value(v)) => v.clone(),
            _ => return Err(self.err("nothing to memoize")),
        };
        self.memo.insert(k, v);
        Ok(())
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.stack.push(Item::Mark),
                b')' => self.push(Value::Tuple(vec![])),
                b'}' => self.push(Value::Dict(vec![])),
                b']' => self.push(Value::List(vec![])),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push(Value::Int(i64::from(v)))
                }
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push(Value::Int(i64::from(v)))
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = usize::from(self.u8()?);
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return Err(self.err("integer wider than 64 bits"));
                    }
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.push(Value::Int(i64::from_le_bytes(buf)))
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push(Value::Float(v))
                }
                b'X' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let v = self.string(n)?;
                    self.push(v)
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let v = self.string(n)?;
                    self.push(v)
                }
                b'B' => {
                    let n = u32::from_le_bytes(self.le()?) as usize;
                    let v = self.take(n)?.to_vec();
                    self.push(Value::Bytes(v))
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let v = self.take(n)?.to_vec();
                    self.push(Value::Bytes(v))
                }
                b'q' => {
                    let k = u32::from(self.u8()?);
                    self.memo_put(k)?
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.le()?);
                    self.memo_put(k)?
                }
                0x94 => {
                    let k = self.memo.len() as u32; // MEMOIZE
                    self.memo_put(k)?
                }
                b'h' => {
                    let k = u32::from(self.u8()?);
                    let v = self.memo_get(k)?;
                    self.push(v)
                }
                b'j' => {
                    let k = u32::from_le_bytes(self.le()?);
                    let v = self.memo_get(k)?;
                    self.push(v)
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow"));
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items))
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items))
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![k, v])?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(items)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(module, name))
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n)),
                        _ => return Err(self.err("STACK_GLOBAL of non-strings")),
                    }
                }
                0x81 => {
                    let _args = self.pop()?; // NEWOBJ
                    let class = self.pop()?;
                    let class = match class {
                        Value::Global(m, n) => format!("{m}.{n}"),
                        other => return Err(self.err(format!("NEWOBJ of {other:?}"))),
                    };
                    self.push(Value::Object {
                        class,
                        state: Box::new(Value::None),
                    })
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.top()? {
                        Value::Object { state: s, .. } => **s = state,
                        // BUILD on a tensor sets Python attributes (requires_grad...); ignore.
                        Value::Tensor(_) => {}
                        other => {
                            let msg = format!("BUILD on {other:?}");
                            return Err(self.err(msg));
                        }
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Value::PersistentId(Box::new(pid)))
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.push(v)
                }
                other => return Err(self.err(format!("unsupported opcode 0x{other:02x}"))),
            }
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        match self.top()? {
            Value::List(l) => {
                l.extend(items);
                Ok(())
            }
            _ => Err(self.err("APPEND to a non-list")),
        }
    }

    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(self.err("odd number of dict items"));
        }
        match self.top()? {
            Value::Dict(d) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                Ok(())
            }
            _ => Err(self.err("SETITEMS on a non-dict")),
        }
    }

    fn reduce(&self, callable: Value, args: Value) -> Result<Value> {
        let Value::Global(module, name) = &callable else {
            return Ok(Value::Call(Box::new(callable), Box::new(args)));
        };
        match (module.as_str(), name.as_str()) {
            ("torch._utils", "_rebuild_tensor_v2") | ("torch._utils", "_rebuild_tensor") => {
                self.rebuild_tensor(&args).map(Value::Tensor)
            }
            ("collections", "OrderedDict") => Ok(Value::Dict(vec![])),
            ("torch.jit._pickle", n) if n.starts_with("build_") => {
                // build_intlist(list) and friends return their argument.
                Ok(args
                    .as_seq()
                    .and_then(|a| a.first())
                    .cloned()
                    .unwrap_or(Value::None))
            }
            _ => Ok(Value::Call(Box::new(callable), Box::new(args))),
        }
    }

    fn rebuild_tensor(&self, args: &Value) -> Result<TensorRef> {
        let bad = |what: &str| self.err(format!("_rebuild_tensor_v2: {what}"));
        let a = args
            .as_seq()
            .ok_or_else(|| bad("arguments are not a tuple"))?;
        let [Value::PersistentId(pid), offset, size, stride, ..] = a else {
            return Err(bad("expected (storage, offset, size, stride, ...)"));
        };
        let pid = pid
            .as_seq()
            .ok_or_else(|| bad("storage id is not a tuple"))?;
        let (storage_type, storage) = match pid {
            [tag, Value::Global(_, ty), key, ..] if tag.as_str() == Some("storage") => (
                ty.clone(),
                key.as_str()
                    .ok_or_else(|| bad("storage key is not a string"))?
                    .to_string(),
            ),
            _ => return Err(bad("storage id is not ('storage', type, key, ...)")),
        };
        let ints = |v: &Value, what: &str| -> Result<Vec<usize>> {
            v.as_seq()
                .ok_or_else(|| bad(what))?
                .iter()
                .map(|x| {
                    x.as_int()
                        .and_then(|i| usize::try_from(i).ok())
                        .ok_or_else(|| bad(what))
                })
                .collect()
        };
        let offset = offset
            .as_int()
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| bad("offset"))?;
        Ok(TensorRef {
            storage,
            storage_type,
            offset,
            size: ints(size, "size")?,
            stride: ints(stride, "stride")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_nested_object_with_tensor() {
        // Hand-assembled protocol-2 pickle of the shape torch.jit.save writes:
        // Obj(__torch__.m.Conv) with state {'w': _rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 4), 0, (2, 2), (2, 1), False, OrderedDict()), 'stride': 2}
        let mut p = vec![0x80, 2];
        p.extend(b"c__torch__.m\nConv\nq\x00)\x81}(X\x01\x00\x00\x00w");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ");
        p.extend(b"K\x00K\x02K\x02\x86K\x02K\x01\x86\x89ccollections\nOrderedDict\n)RtR");
        p.extend(b"X\x06\x00\x00\x00strideK\x02ub.");
        let v = unpickle(&p, "test").unwrap();
        let Value::Object { class, state } = v else {
            panic!("not an object")
        };
        assert_eq!(class, "__torch__.m.Conv");
        let Value::Dict(items) = *state else {
            panic!("state is not a dict")
        };
        assert_eq!(items[1], (Value::Str("stride".into()), Value::Int(2)));
        let Value::Tensor(t) = &items[0].1 else {
            panic!("not a tensor")
        };
        assert_eq!(
            (t.storage.as_str(), t.size.as_slice(), t.stride.as_slice()),
            ("0", &[2, 2][..], &[2, 1][..])
        );
    }

    #[test]
    fn truncated_and_unknown_opcodes_are_errors() {
        assert!(unpickle(&[0x80, 2, b'X', 5, 0], "t").is_err());
        let e = unpickle(&[0x80, 2, 0xff], "data.pkl")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.pkl") && e.contains("0xff"), "{e}");
    }
}
