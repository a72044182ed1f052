//! A reader for the pickles `torch.save` writes, safe on hostile input.
//!
//! Why not `candle_core::pickle`: it recurses on nested objects (a pickle nesting a tuple a few
//! million levels deep overflows the stack), indexes argument lists without checking their
//! length (a short `_rebuild_tensor_v2` call panics), and builds objects from any global.
//!
//! This reader is a loop over opcodes with an explicit stack, for the subset protocol 2 (what
//! `torch.save` uses) and the protocol 4 framing opcodes need. Objects live in one arena and
//! refer to each other by index, so nothing is ever dropped or walked recursively. Limits:
//! - nesting: at most [`MAX_DEPTH`] levels; depths are exact because a dict or list cannot be
//!   changed once it sits inside another object (which also rules out cycles; `torch.save`
//!   never writes self-referential data);
//! - size: objects, container entries, memo entries and string bytes are charged to a budget
//!   proportional to the pickle's length ([`Budget`]); a memo read (BINGET) shares the object;
//! - globals: only those PyTorch checkpoints use ([`Global`]); anything else is refused by name.

use std::collections::HashMap;

use candle_core::DType;

/// Deepest nesting of tuples, lists and dicts accepted (checkpoints nest 4 or 5 levels).
pub const MAX_DEPTH: u32 = 1000;

/// Index of an object in [`Pickle::objects`].
pub type Id = usize;

/// The callables and classes a PyTorch checkpoint refers to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    /// `torch.FloatStorage` and friends: the dtype of a persistent-id storage.
    StorageType(DType),
}

/// A tensor storage named by a persistent id: the zip entry `data/<key>`.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: DType,
    /// Length in elements, as the record claims (checked against the entry's size later).
    pub numel: usize,
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: a view into a storage, offset
/// and strides in elements.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub size: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Obj {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    /// A dict or an `OrderedDict`, entries in insertion order.
    Dict(Vec<(Id, Id)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// An unpickled object graph; `root` is what STOP returned.
pub struct Pickle {
    pub objects: Vec<Obj>,
    pub root: Id,
}

impl Pickle {
    pub fn get(&self, id: Id) -> &Obj {
        &self.objects[id]
    }

    /// The entries of `id` if it is a dict.
    pub fn dict(&self, id: Id) -> Option<&[(Id, Id)]> {
        match self.get(id) {
            Obj::Dict(kv) => Some(kv),
            _ => None,
        }
    }

    pub fn str(&self, id: Id) -> Option<&str> {
        match self.get(id) {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses a whole pickle. Errors are one line and name the opcode or global and its position.
pub fn parse(bytes: &[u8]) -> Result<Pickle, String> {
    Machine::new(bytes).run()
}

/// Work allowed for one pickle: a few units per byte covers every legitimate file (each opcode
/// is at least one byte and creates at most one object or entry).
struct Budget {
    left: usize,
}

impl Budget {
    fn for_len(len: usize) -> Self {
        Budget { left: len.saturating_mul(4).saturating_add(1024) }
    }
    fn charge(&mut self, units: usize) -> Result<(), String> {
        self.left = self.left.checked_sub(units).ok_or("the pickle builds more than its size allows")?;
        Ok(())
    }
}

/// Reads bytes from the pickle, failing cleanly at its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {} (needs {n} more bytes)", self.pos))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn le<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.bytes[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("unterminated GLOBAL name")?;
        let line = std::str::from_utf8(&rest[..n]).map_err(|_| "GLOBAL name is not UTF-8")?;
        self.pos += n + 1;
        Ok(line)
    }
}

/// The unpickling machine: arena, value stack, mark stack and memo.
struct Machine<'a> {
    input: Cursor<'a>,
    budget: Budget,
    objects: Vec<Obj>,
    /// Nesting depth of each object (scalars 0).
    depth: Vec<u32>,
    /// Set once an object is inside another one; dicts and lists are immutable from then on.
    nested: Vec<bool>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Machine {
            input: Cursor { bytes, pos: 0 },
            budget: Budget::for_len(bytes.len()),
            objects: Vec::new(),
            depth: Vec::new(),
            nested: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn run(mut self) -> Result<Pickle, String> {
        loop {
            let at = self.input.pos;
            let op = self.input.u8()?;
            match self.step(op) {
                Ok(true) => {}
                Ok(false) => {
                    let root = self.pop().map_err(|e| format!("STOP at byte {at}: {e}"))?;
                    return Ok(Pickle { objects: self.objects, root });
                }
                Err(e) => return Err(format!("{} at byte {at}: {e}", op_name(op))),
            }
        }
    }

    /// Executes one opcode; `Ok(false)` on STOP.
    fn step(&mut self, op: u8) -> Result<bool, String> {
        match op {
            0x80 => {
                let proto = self.input.u8()?;
                if !(2..=5).contains(&proto) {
                    return Err(format!("protocol {proto} is not one torch.save writes"));
                }
            }
            0x95 => {
                self.input.take(8)?; // FRAME: a length hint for buffering; we hold all bytes.
            }
            b'}' => self.push_new(Obj::Dict(Vec::new()), 0)?,
            b']' => self.push_new(Obj::List(Vec::new()), 0)?,
            b')' => self.push_new(Obj::Tuple(Vec::new()), 0)?,
            b'(' => {
                if self.marks.len() >= MAX_DEPTH as usize {
                    return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
                }
                self.marks.push(self.stack.len());
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push_container(Obj::Tuple(items.clone()), &items)?;
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let items = self.pop_n(n)?;
                self.push_container(Obj::Tuple(items.clone()), &items)?;
            }
            b'l' => {
                let items = self.pop_mark()?;
                self.push_container(Obj::List(items.clone()), &items)?;
            }
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs(&items)?;
                self.push_container(Obj::Dict(pairs), &items)?;
            }
            b's' => {
                let items = self.pop_n(2)?;
                self.extend_top(items, true)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_top(items, true)?;
            }
            b'a' => {
                let items = self.pop_n(1)?;
                self.extend_top(items, false)?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_top(items, false)?;
            }
            b'X' => {
                let n = u32::from_le_bytes(self.input.le()?) as usize;
                self.push_str(n)?;
            }
            0x8c => {
                let n = self.input.u8()? as usize;
                self.push_str(n)?;
            }
            0x8d => {
                let n = usize::try_from(u64::from_le_bytes(self.input.le()?)).map_err(|_| "string too long")?;
                self.push_str(n)?;
            }
            b'J' => {
                let v = i32::from_le_bytes(self.input.le()?);
                self.push_new(Obj::Int(v as i64), 0)?;
            }
            b'K' => {
                let v = self.input.u8()?;
                self.push_new(Obj::Int(v as i64), 0)?;
            }
            b'M' => {
                let v = u16::from_le_bytes(self.input.le()?);
                self.push_new(Obj::Int(v as i64), 0)?;
            }
            0x8a => {
                let v = long1(&mut self.input)?;
                self.push_new(Obj::Int(v), 0)?;
            }
            b'G' => {
                let v = f64::from_be_bytes(self.input.le()?);
                self.push_new(Obj::Float(v), 0)?;
            }
            0x88 => self.push_new(Obj::Bool(true), 0)?,
            0x89 => self.push_new(Obj::Bool(false), 0)?,
            b'N' => self.push_new(Obj::None, 0)?,
            b'c' => {
                let module = self.input.line()?;
                let name = self.input.line()?;
                let g = global(module, name)?;
                self.push_new(Obj::Global(g), 0)?;
            }
            0x93 => {
                let [m, n] = self.pop_n(2)?.try_into().expect("two items");
                let (module, name) = match (&self.objects[m], &self.objects[n]) {
                    (Obj::Str(m), Obj::Str(n)) => (m.clone(), n.clone()),
                    _ => return Err("module and name must be strings".into()),
                };
                let g = global(&module, &name)?;
                self.push_new(Obj::Global(g), 0)?;
            }
            b'R' => {
                let [func, args] = self.pop_n(2)?.try_into().expect("two items");
                self.reduce(func, args)?;
            }
            b'b' => {
                let state = self.pop()?;
                self.build(state)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = persistent_storage(self, pid)?;
                self.push_new(Obj::Storage(storage), 1)?;
            }
            b'q' => {
                let i = self.input.u8()? as u32;
                self.put(i)?;
            }
            b'r' => {
                let i = u32::from_le_bytes(self.input.le()?);
                self.put(i)?;
            }
            0x94 => {
                let i = u32::try_from(self.memo.len()).map_err(|_| "memo full")?;
                self.put(i)?;
            }
            b'h' => {
                let i = self.input.u8()? as u32;
                self.get(i)?;
            }
            b'j' => {
                let i = u32::from_le_bytes(self.input.le()?);
                self.get(i)?;
            }
            b'.' => return Ok(false),
            _ => return Err("not an opcode torch.save writes".into()),
        }
        Ok(true)
    }

    fn push_new(&mut self, obj: Obj, depth: u32) -> Result<(), String> {
        self.budget.charge(1)?;
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.objects.push(obj);
        self.depth.push(depth);
        self.nested.push(false);
        self.stack.push(self.objects.len() - 1);
        Ok(())
    }

    /// Pushes a container holding `children`, which become immutable.
    fn push_container(&mut self, obj: Obj, children: &[Id]) -> Result<(), String> {
        self.budget.charge(children.len())?;
        let depth = 1 + self.nest(children);
        self.push_new(obj, depth)
    }

    /// Marks `children` as nested and returns their greatest depth.
    fn nest(&mut self, children: &[Id]) -> u32 {
        children
            .iter()
            .map(|&c| {
                self.nested[c] = true;
                self.depth[c]
            })
            .max()
            .unwrap_or(0)
    }

    fn push_str(&mut self, n: usize) -> Result<(), String> {
        let bytes = self.input.take(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| "string is not UTF-8")?;
        self.budget.charge(n / 16)?;
        self.push_new(Obj::Str(s.to_string()), 0)
    }

    fn pop(&mut self) -> Result<Id, String> {
        Ok(self.pop_n(1)?[0])
    }

    /// Pops `n` items, never reaching below the innermost MARK (as Python's unpickler).
    fn pop_n(&mut self, n: usize) -> Result<Vec<Id>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + n {
            return Err("stack underflow".into());
        }
        Ok(self.stack.split_off(self.stack.len() - n))
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, String> {
        let mark = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(mark))
    }

    /// SETITEM(S) (`dict`: `items` are key, value pairs) or APPEND(S) on the object below them.
    fn extend_top(&mut self, items: Vec<Id>, dict: bool) -> Result<(), String> {
        let &target = self
            .stack
            .last()
            .filter(|_| self.stack.len() > self.marks.last().copied().unwrap_or(0))
            .ok_or("stack underflow")?;
        self.budget.charge(items.len())?;
        let depth = 1 + self.nest(&items);
        if self.nested[target] {
            return Err("changes an object after nesting it (self-referential data is not supported)".into());
        }
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} levels"));
        }
        self.depth[target] = self.depth[target].max(depth);
        match (&mut self.objects[target], dict) {
            (Obj::Dict(kv), true) => kv.extend(pairs(&items)?),
            (Obj::List(v), false) => v.extend(items),
            _ => return Err(format!("target is not a {}", if dict { "dict" } else { "list" })),
        }
        Ok(())
    }

    /// REDUCE: calls one of the accepted globals.
    fn reduce(&mut self, func: Id, args: Id) -> Result<(), String> {
        let Obj::Global(g) = self.objects[func] else { return Err("calls something that is not a global".into()) };
        let Obj::Tuple(a) = &self.objects[args] else { return Err("arguments are not a tuple".into()) };
        let a = a.clone();
        let depth = 1 + self.nest(&[args]);
        match g {
            Global::OrderedDict if a.is_empty() => self.push_new(Obj::Dict(Vec::new()), 0),
            Global::OrderedDict => Err("collections.OrderedDict called with arguments".into()),
            Global::RebuildTensorV2 => {
                let t = rebuild_tensor(self, &a)?;
                self.push_new(Obj::Tensor(t), depth)
            }
            Global::RebuildParameter => {
                if a.len() != 3 {
                    return Err(format!("torch._utils._rebuild_parameter takes 3 arguments, got {}", a.len()));
                }
                match self.objects[a[0]] {
                    Obj::Tensor(_) => {
                        self.stack.push(a[0]);
                        Ok(())
                    }
                    _ => Err("torch._utils._rebuild_parameter of something that is not a tensor".into()),
                }
            }
            Global::StorageType(_) => Err("calls a storage type".into()),
        }
    }

    /// BUILD: only an `OrderedDict`'s attributes (a state dict's `_metadata`), which we ignore.
    fn build(&mut self, state: Id) -> Result<(), String> {
        let &target = self
            .stack
            .last()
            .filter(|_| self.stack.len() > self.marks.last().copied().unwrap_or(0))
            .ok_or("stack underflow")?;
        self.nest(&[state]);
        match self.objects[target] {
            Obj::Dict(_) if !self.nested[target] => Ok(()),
            Obj::Dict(_) => Err("changes an object after nesting it".into()),
            _ => Err("sets the state of something that is not an OrderedDict".into()),
        }
    }

    fn put(&mut self, i: u32) -> Result<(), String> {
        let &top = self.stack.last().ok_or("empty stack")?;
        self.budget.charge(1)?;
        self.memo.insert(i, top);
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<(), String> {
        let &id = self.memo.get(&i).ok_or_else(|| format!("memo entry {i} was never stored"))?;
        self.budget.charge(1)?;
        self.stack.push(id);
        Ok(())
    }
}

/// `[k0, v0, k1, v1, ...]` as pairs.
fn pairs(items: &[Id]) -> Result<Vec<(Id, Id)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of dict items".into());
    }
    Ok(items.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

/// LONG1: a little-endian two's-complement integer of up to 8 bytes.
fn long1(input: &mut Cursor) -> Result<i64, String> {
    let n = input.u8()? as usize;
    if n > 8 {
        return Err(format!("{n}-byte integer does not fit 64 bits"));
    }
    let bytes = input.take(n)?;
    let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
    buf[..n].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buf))
}

/// The accepted globals; anything else is refused by its full name.
fn global(module: &str, name: &str) -> Result<Global, String> {
    let dtype = |d| Ok(Global::StorageType(d));
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", "FloatStorage") => dtype(DType::F32),
        ("torch", "HalfStorage") => dtype(DType::F16),
        ("torch", "BFloat16Storage") => dtype(DType::BF16),
        ("torch", "DoubleStorage") => dtype(DType::F64),
        ("torch", "LongStorage") => dtype(DType::I64),
        ("torch", "IntStorage") => dtype(DType::I32),
        ("torch", "ShortStorage") => dtype(DType::I16),
        ("torch", "ByteStorage") | ("torch", "BoolStorage") => dtype(DType::U8),
        _ => Err(format!("refers to `{module}.{name}`, which is not part of a PyTorch checkpoint (refused)")),
    }
}

/// BINPERSID's argument: `('storage', torch.XStorage, key, location, numel)`.
fn persistent_storage(m: &Machine, pid: Id) -> Result<StorageRef, String> {
    let bad = || "persistent id is not ('storage', type, key, location, numel)".to_string();
    let Obj::Tuple(t) = &m.objects[pid] else { return Err(bad()) };
    let [tag, ty, key, _location, numel] = t.as_slice() else { return Err(bad()) };
    match (&m.objects[*tag], &m.objects[*ty], &m.objects[*key], &m.objects[*numel]) {
        (Obj::Str(tag), Obj::Global(Global::StorageType(dtype)), Obj::Str(key), &Obj::Int(numel))
            if tag == "storage" =>
        {
            // The key names a zip entry: keep it a plain name so it cannot point elsewhere.
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("storage key `{key}` is not a plain name"));
            }
            let numel = usize::try_from(numel).map_err(|_| format!("storage `{key}` has {numel} elements"))?;
            Ok(StorageRef { key: key.clone(), dtype: *dtype, numel })
        }
        _ => Err(bad()),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
/// [, metadata])`.
fn rebuild_tensor(m: &Machine, args: &[Id]) -> Result<TensorRef, String> {
    if !(6..=7).contains(&args.len()) {
        return Err(format!("torch._utils._rebuild_tensor_v2 takes 6 or 7 arguments, got {}", args.len()));
    }
    let Obj::Storage(storage) = &m.objects[args[0]] else {
        return Err("torch._utils._rebuild_tensor_v2: first argument is not a storage".into());
    };
    let offset = usize_of(m, args[1]).ok_or("torch._utils._rebuild_tensor_v2: bad storage offset")?;
    let ints = |id: Id, what: &str| -> Result<Vec<usize>, String> {
        let Obj::Tuple(t) = &m.objects[id] else {
            return Err(format!("torch._utils._rebuild_tensor_v2: {what} is not a tuple"));
        };
        t.iter()
            .map(|&i| usize_of(m, i).ok_or_else(|| format!("torch._utils._rebuild_tensor_v2: bad {what}")))
            .collect()
    };
    let size = ints(args[2], "size")?;
    let stride = ints(args[3], "stride")?;
    if size.len() != stride.len() {
        return Err(format!("torch._utils._rebuild_tensor_v2: {} sizes but {} strides", size.len(), stride.len()));
    }
    Ok(TensorRef { storage: storage.clone(), offset, size, stride })
}

fn usize_of(m: &Machine, id: Id) -> Option<usize> {
    match m.objects[id] {
        Obj::Int(v) => usize::try_from(v).ok(),
        _ => None,
    }
}

/// The opcode's name for error messages.
fn op_name(op: u8) -> String {
    let name = match op {
        0x80 => "PROTO",
        0x95 => "FRAME",
        b'}' => "EMPTY_DICT",
        b']' => "EMPTY_LIST",
        b')' => "EMPTY_TUPLE",
        b'(' => "MARK",
        b't' => "TUPLE",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        b'l' => "LIST",
        b'd' => "DICT",
        b's' => "SETITEM",
        b'u' => "SETITEMS",
        b'a' => "APPEND",
        b'e' => "APPENDS",
        b'X' => "BINUNICODE",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'M' => "BININT2",
        0x8a => "LONG1",
        b'G' => "BINFLOAT",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        b'N' => "NONE",
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'b' => "BUILD",
        b'Q' => "BINPERSID",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        0x94 => "MEMOIZE",
        b'h' => "BINGET",
        b'j' => "LONG_BINGET",
        b'.' => "STOP",
        _ => return format!("opcode 0x{op:02x}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_limited_without_recursion() {
        let mut p = vec![0x80, 2, b')'];
        p.extend(std::iter::repeat_n(0x85, 3_000_000));
        p.push(b'.');
        let e = parse(&p).err().unwrap();
        assert!(e.contains("TUPLE1 at byte") && e.contains("nesting deeper than 1000"), "{e}");
    }

    #[test]
    fn memo_reads_share_and_cycles_are_refused() {
        // l = []; l.append(l)
        let e = parse(&[0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.']).err().unwrap();
        assert!(e.contains("APPEND") && e.contains("self-referential"), "{e}");
        // ([1], same list): shared, one list object.
        let p = parse(&[0x80, 2, b']', b'K', 1, b'a', b'q', 0, b'h', 0, 0x86, b'.']).unwrap();
        assert_eq!(p.get(p.root), &Obj::Tuple(vec![0, 0]));
    }

    #[test]
    fn unknown_globals_and_opcodes_are_named() {
        let e = parse(b"\x80\x02cbuiltins\neval\n.").err().unwrap();
        assert!(e.contains("GLOBAL at byte 2") && e.contains("`builtins.eval`"), "{e}");
        let e = parse(b"\x80\x02I1\n.").err().unwrap();
        assert!(e.contains("opcode 0x49 at byte 2"), "{e}");
        let e = parse(b"\x80\x02K").err().unwrap();
        assert!(e.contains("BININT1 at byte 2: truncated"), "{e}");
    }

    #[test]
    fn integers_and_floats() {
        let p = parse(b"\x80\x02(J\xff\xff\xff\xff\x8a\x02\x00\x80G?\xf8\x00\x00\x00\x00\x00\x00t.").unwrap();
        let Obj::Tuple(t) = p.get(p.root) else { panic!() };
        let v: Vec<&Obj> = t.iter().map(|&i| p.get(i)).collect();
        assert_eq!(v, [&Obj::Int(-1), &Obj::Int(-32768), &Obj::Float(1.5)]);
    }
}
