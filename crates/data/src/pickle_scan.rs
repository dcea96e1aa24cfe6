//! A pre-pass over a pickle's opcodes that refuses pickles `serde-pickle` cannot survive.
//!
//! `serde-pickle` builds its result with a stack machine, but then converts, formats and drops
//! that result recursively, and it expands memo references (`GET`) by cloning the memoised
//! value. So a 20 KB pickle of 10,000 nested lists overflows the stack and kills the process,
//! and a few hundred bytes of "a list holding the previous list twice", repeated, ask for
//! 2^60 values. Neither can be caught once `serde-pickle` has started, so [`check`] runs first:
//! it walks the same opcodes with the same stack discipline, but keeps for each stack item only
//! how deeply it nests and how many bytes it would take once expanded, and it fails as soon as
//! either passes a limit no CIFAR-10 batch comes near (a real batch nests 4 deep and expands to
//! about its own size).
//!
//! The walk mirrors `serde-pickle` 1.2's `parse_value`: the same opcodes, the same `MARK`
//! frames, `POP` on an empty frame popping the mark, `DUP` and `REDUCE` cloning what a memo
//! reference points to. Wherever `serde-pickle` itself stops with an error (an unknown opcode,
//! the end of the input, a stack underflow, a missing memo entry), the walk stops too and says
//! nothing, so that `serde-pickle`'s more precise message is the one reported: everything it
//! built up to that point has already passed the limits.
//!
//! Memo references are costed by what they point to when they are taken. That is only sound
//! if a memoised value never changes after a `GET` and a memo slot is never filled twice, which
//! no pickler does (Python's memo ids are unique, and a container is complete before it is
//! fetched again); a pickle that does either is refused.

use std::collections::HashMap;

/// Deepest nesting of lists, tuples, dicts and sets accepted. A CIFAR-10 batch nests 4 deep
/// (dict, ndarray state tuple, dtype state tuple, its byte-order string); `serde-pickle`
/// recurses once per level when converting, printing and dropping, so the limit keeps that far
/// from any thread's stack size.
pub const MAX_DEPTH: u32 = 100;

/// Longest decimal integer (`INT` / `LONG` opcodes) accepted, in characters: parsing one is
/// quadratic in its length.
pub const MAX_TEXT_INT: usize = 10_000;

/// What one decoded value costs, counted as `serde-pickle` would hold it.
#[derive(Clone, Copy, Debug, Default)]
struct Info {
    /// 0 for a scalar, 1 + the deepest child for a container.
    depth: u32,
    /// Bytes once every memo reference in it is expanded (32 per value plus payloads).
    bytes: u64,
}

/// Bytes counted per decoded value (a `serde_pickle::Value` is 32 bytes, plus its `Vec`).
const VALUE_BYTES: u64 = 32;

impl Info {
    fn leaf(payload: usize) -> Info {
        Info {
            depth: 0,
            bytes: VALUE_BYTES + payload as u64,
        }
    }
}

#[derive(Clone, Copy)]
enum Item {
    Val(Info),
    /// A memo reference, costed by its slot.
    Ref(u32),
}

struct Slot {
    info: Info,
    /// Fetched with `GET` at least once: it must not change any more.
    fetched: bool,
}

struct Walk<'a> {
    bytes: &'a [u8],
    pos: usize,
    frames: Vec<Vec<Item>>,
    stack: Vec<Item>,
    memo: HashMap<u32, Slot>,
    /// Everything allocated so far, clones included.
    total: u64,
    budget: u64,
}

/// Why the walk ended early: `Stop` where `serde-pickle` fails by itself, `Refuse` for a bomb.
enum End {
    Stop,
    Refuse(String),
}

type Step<T> = Result<T, End>;

/// Checks that unpickling `bytes` with `serde-pickle` stays within [`MAX_DEPTH`] levels of
/// nesting and expands to at most 8 times the input's size plus 64 MiB (clones included).
/// `Err` says, in words, what the pickle does instead.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut walk = Walk {
        bytes,
        pos: 0,
        frames: Vec::new(),
        stack: Vec::new(),
        memo: HashMap::new(),
        total: 0,
        budget: (bytes.len() as u64).saturating_mul(8) + (64 << 20),
    };
    match walk.run() {
        Ok(()) | Err(End::Stop) => Ok(()),
        Err(End::Refuse(why)) => Err(why),
    }
}

impl<'a> Walk<'a> {
    fn run(&mut self) -> Step<()> {
        loop {
            let op = self.byte()?;
            match op {
                // Framing and protocol: arguments only.
                0x80 => self.skip(1)?,
                0x95 => self.skip(8)?,
                b'.' => {
                    // STOP: the result is converted (expanded) once more.
                    let top = self.pop()?;
                    let info = self.info(top)?;
                    return self.spend(info.bytes);
                }
                b'(' => {
                    let frame = std::mem::take(&mut self.stack);
                    self.frames.push(frame);
                }
                b'0' => {
                    if self.stack.is_empty() {
                        self.pop_mark()?;
                    } else {
                        self.pop()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    // DUP clones the value (a memo reference is resolved first).
                    let top = *self.stack.last().ok_or(End::Stop)?;
                    let info = self.info(top)?;
                    self.spend(info.bytes)?;
                    self.stack.push(Item::Val(info));
                }

                // Memo.
                b'p' => {
                    let line = self.line()?;
                    let id = parse_ascii(line)?;
                    self.memoize(id)?;
                }
                b'q' => {
                    let id = self.byte()?.into();
                    self.memoize(id)?;
                }
                b'r' => {
                    let id = self.u32()?;
                    self.memoize(id)?;
                }
                0x94 => {
                    let id = self.memo.len() as u32;
                    self.memoize(id)?;
                }
                b'g' => {
                    let line = self.line()?;
                    let id = parse_ascii(line)?;
                    self.get(id)?;
                }
                b'h' => {
                    let id = self.byte()?.into();
                    self.get(id)?;
                }
                b'j' => {
                    let id = self.u32()?;
                    self.get(id)?;
                }

                // Scalars with fixed-size arguments.
                b'N' | 0x88 | 0x89 => self.push_leaf(0)?,
                b'K' => self.leaf_after(1)?,
                b'M' => self.leaf_after(2)?,
                b'J' => self.leaf_after(4)?,
                b'G' => self.leaf_after(8)?,

                // Scalars with a text argument.
                b'I' | b'L' => {
                    let line = self.line()?;
                    if line.len() > MAX_TEXT_INT {
                        return Err(End::Refuse(format!(
                            "it holds a text integer of {} characters at byte {}",
                            line.len(),
                            self.pos
                        )));
                    }
                    self.push_leaf(line.len())?;
                }
                b'F' | b'S' | b'V' => {
                    let line = self.line()?;
                    self.push_leaf(line.len())?;
                }

                // Length-prefixed strings and longs.
                b'U' | b'C' | 0x8c | 0x8a => {
                    let n = self.byte()?.into();
                    self.leaf_after(n)?;
                }
                b'T' | 0x8b => {
                    let n = i32::from_le_bytes(self.array()?);
                    let n = usize::try_from(n).map_err(|_| End::Stop)?;
                    self.leaf_after(n)?;
                }
                b'X' | b'B' => {
                    let n = self.u32()? as usize;
                    self.leaf_after(n)?;
                }
                0x8d | 0x8e | 0x96 => {
                    let n = u64::from_le_bytes(self.array()?);
                    let n = usize::try_from(n).map_err(|_| End::Stop)?;
                    self.leaf_after(n)?;
                }

                // Containers.
                b')' | b']' | b'}' | 0x8f => self.push_container(&[])?,
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(End::Stop);
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push_container(&items)?;
                }
                b't' | b'l' | b'd' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.push_container(&items)?;
                }
                b'a' => {
                    let item = self.pop()?;
                    self.extend_top(&[item])?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_top(&[key, value])?;
                }
                b'e' | b'u' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.extend_top(&items)?;
                }

                // Globals and objects.
                b'c' => {
                    let a = self.line()?.len();
                    let b = self.line()?.len();
                    self.push_leaf(a + b)?;
                }
                0x93 => {
                    // STACK_GLOBAL resolves two memo references (cloning them).
                    for _ in 0..2 {
                        let item = self.pop()?;
                        let info = self.info(item)?;
                        self.spend(info.bytes)?;
                    }
                    self.push_leaf(0)?;
                }
                b'R' => {
                    // REDUCE: the argument tuple (resolved, so possibly cloned) becomes the
                    // result, or one of its members does.
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let args = self.info(args)?;
                    let callable = self.info(callable)?;
                    self.spend(args.bytes.saturating_mul(2))?;
                    self.spend(callable.bytes)?;
                    self.stack.push(Item::Val(args));
                }
                b'i' => {
                    self.line()?;
                    self.line()?;
                    let args = self.pop_mark()?;
                    self.push_container(&args)?;
                }
                b'o' => {
                    let args = self.pop_mark()?;
                    self.pop()?;
                    self.push_container(&args)?;
                }
                0x81 => {
                    let args = self.pop()?;
                    self.pop()?;
                    self.stack.push(args);
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    self.pop()?;
                    self.push_container(&[args, kwargs])?;
                }
                b'b' => {
                    let state = self.pop()?;
                    self.pop()?;
                    self.stack.push(state);
                }

                // Anything else (PERSID, EXT*, out-of-band buffers, junk) is an error in
                // serde-pickle too.
                _ => return Err(End::Stop),
            }
        }
    }

    fn byte(&mut self) -> Step<u8> {
        let b = *self.bytes.get(self.pos).ok_or(End::Stop)?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Step<()> {
        if self.bytes.len() - self.pos < n {
            return Err(End::Stop);
        }
        self.pos += n;
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Step<[u8; N]> {
        let start = self.pos;
        self.skip(N)?;
        let mut a = [0; N];
        a.copy_from_slice(&self.bytes[start..start + N]);
        Ok(a)
    }

    fn u32(&mut self) -> Step<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A newline-terminated argument, as serde-pickle reads it: up to the next `\n` or the end
    /// of the input (the newline is consumed, not returned).
    fn line(&mut self) -> Step<&'a [u8]> {
        let bytes: &'a [u8] = self.bytes;
        let rest = &bytes[self.pos..];
        let (line, len) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += len;
        Ok(line)
    }

    fn leaf_after(&mut self, n: usize) -> Step<()> {
        self.skip(n)?;
        self.push_leaf(n)
    }

    fn push_leaf(&mut self, payload: usize) -> Step<()> {
        let info = Info::leaf(payload);
        self.spend(info.bytes)?;
        self.stack.push(Item::Val(info));
        Ok(())
    }

    fn spend(&mut self, bytes: u64) -> Step<()> {
        self.total = self.total.saturating_add(bytes);
        if self.total > self.budget {
            return Err(End::Refuse(format!(
                "unpickling it would take more than {} MB (at byte {} of {}), far more than a \
                 CIFAR-10 batch of this size; it repeats shared values or holds millions of \
                 tiny ones",
                self.budget >> 20,
                self.pos,
                self.bytes.len()
            )));
        }
        Ok(())
    }

    fn pop(&mut self) -> Step<Item> {
        self.stack.pop().ok_or(End::Stop)
    }

    fn pop_mark(&mut self) -> Step<Vec<Item>> {
        let outer = self.frames.pop().ok_or(End::Stop)?;
        Ok(std::mem::replace(&mut self.stack, outer))
    }

    fn info(&self, item: Item) -> Step<Info> {
        match item {
            Item::Val(info) => Ok(info),
            Item::Ref(id) => self.memo.get(&id).map(|s| s.info).ok_or(End::Stop),
        }
    }

    /// A container holding `items`, pushed.
    fn push_container(&mut self, items: &[Item]) -> Step<()> {
        let mut info = Info {
            depth: 1,
            bytes: VALUE_BYTES,
        };
        self.spend(VALUE_BYTES)?;
        self.add_children(&mut info, items)?;
        self.stack.push(Item::Val(info));
        Ok(())
    }

    /// `items` added to the container on top of the stack (APPEND, SETITEMS, …).
    fn extend_top(&mut self, items: &[Item]) -> Step<()> {
        let top = *self.stack.last().ok_or(End::Stop)?;
        let mut info = self.info(top)?;
        if let Item::Ref(id) = top {
            if self.memo.get(&id).is_some_and(|s| s.fetched) {
                return Err(End::Refuse(format!(
                    "it changes memo entry {id} after fetching it (at byte {}), as only a \
                     self-referencing or hand-made pickle does",
                    self.pos
                )));
            }
        }
        self.add_children(&mut info, items)?;
        match top {
            Item::Val(_) => {
                if let Some(last) = self.stack.last_mut() {
                    *last = Item::Val(info);
                }
            }
            Item::Ref(id) => {
                if let Some(slot) = self.memo.get_mut(&id) {
                    slot.info = info;
                }
            }
        }
        Ok(())
    }

    fn add_children(&mut self, info: &mut Info, items: &[Item]) -> Step<()> {
        for &item in items {
            let child = self.info(item)?;
            info.depth = info.depth.max(child.depth + 1);
            info.bytes = info.bytes.saturating_add(child.bytes);
        }
        if info.depth > MAX_DEPTH {
            return Err(End::Refuse(format!(
                "it nests lists, tuples or dicts more than {MAX_DEPTH} levels deep (at byte {}), \
                 which no CIFAR-10 batch does",
                self.pos
            )));
        }
        if info.bytes > self.budget {
            return self.spend(info.bytes);
        }
        Ok(())
    }

    fn memoize(&mut self, id: u32) -> Step<()> {
        let item = self.pop()?;
        let info = match item {
            Item::Val(info) => info,
            Item::Ref(_) => {
                // serde-pickle stores a clone of what the reference points to.
                let info = self.info(item)?;
                self.spend(info.bytes)?;
                info
            }
        };
        if self.memo.contains_key(&id) {
            return Err(End::Refuse(format!(
                "it stores memo entry {id} twice (at byte {}), which no pickler does",
                self.pos
            )));
        }
        self.memo.insert(
            id,
            Slot {
                info,
                fetched: false,
            },
        );
        self.stack.push(Item::Ref(id));
        Ok(())
    }

    fn get(&mut self, id: u32) -> Step<()> {
        let slot = self.memo.get_mut(&id).ok_or(End::Stop)?;
        slot.fetched = true;
        self.stack.push(Item::Ref(id));
        Ok(())
    }
}

/// A memo id written in decimal (PUT / GET); anything else is an error in serde-pickle too.
fn parse_ascii(line: &[u8]) -> Step<u32> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(End::Stop)
}
