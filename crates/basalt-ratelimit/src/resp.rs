//! RESP2, the Redis protocol: commands out, replies in.
//!
//! The parser works on a buffer and says whether it holds a whole reply, so the
//! connection reads until it does; anything that is not RESP2 is an error, never
//! a panic, and sizes are bounded so a confused peer cannot make us allocate
//! without limit.

/// The longest bulk string accepted.
const MAX_BULK: usize = 64 << 20;
/// The most elements an array may claim.
const MAX_ARRAY: usize = 1 << 20;
/// The deepest nesting of arrays accepted.
const MAX_DEPTH: usize = 8;
/// The longest simple line (status, error, integer or length).
const MAX_LINE: usize = 64 << 10;

/// A Redis reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR …`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nabc`.
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`.
    Nil,
    /// `*2\r\n…`.
    Array(Vec<Self>),
}

/// Writes a command as a RESP array of bulk strings.
pub(crate) fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the start of `buf`: `Ok(None)` if more bytes are
/// needed, else the reply and how many bytes it took.
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let mut parser = Parser { buf, pos: 0 };
    Ok(parser.reply(0)?.map(|reply| (reply, parser.pos)))
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn reply(&mut self, depth: usize) -> Result<Option<Reply>, String> {
        let Some(line) = self.line()? else {
            return Ok(None);
        };
        let (&kind, rest) = line
            .split_first()
            .ok_or_else(|| "empty reply line".to_owned())?;
        let text = || {
            std::str::from_utf8(rest)
                .map(str::to_owned)
                .map_err(|_| "reply line is not UTF-8".to_owned())
        };
        Ok(Some(match kind {
            b'+' => Reply::Status(text()?),
            b'-' => Reply::Error(text()?),
            b':' => Reply::Integer(number(rest)?),
            b'$' => {
                let Some(len) = length(rest, MAX_BULK)? else {
                    return Ok(Some(Reply::Nil));
                };
                let end = self.pos + len;
                if self.buf.len() < end + 2 {
                    return Ok(None);
                }
                if &self.buf[end..end + 2] != b"\r\n" {
                    return Err("bulk string not followed by CRLF".to_owned());
                }
                let bulk = self.buf[self.pos..end].to_vec();
                self.pos = end + 2;
                Reply::Bulk(bulk)
            }
            b'*' => {
                let Some(len) = length(rest, MAX_ARRAY)? else {
                    return Ok(Some(Reply::Nil));
                };
                if depth >= MAX_DEPTH {
                    return Err("arrays nested too deeply".to_owned());
                }
                // Each element takes at least three bytes, which bounds what a
                // claimed length can make us reserve.
                let mut items = Vec::with_capacity(len.min(self.buf.len() / 3));
                for _ in 0..len {
                    let Some(item) = self.reply(depth + 1)? else {
                        return Ok(None);
                    };
                    items.push(item);
                }
                Reply::Array(items)
            }
            other => return Err(format!("unknown reply type byte 0x{other:02x}")),
        }))
    }

    /// The next CRLF-terminated line, without the CRLF.
    fn line(&mut self) -> Result<Option<&[u8]>, String> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_LINE {
                return Err("reply line too long".to_owned());
            }
            return Ok(None);
        };
        if end > MAX_LINE {
            return Err("reply line too long".to_owned());
        }
        if end == 0 || rest[end - 1] != b'\r' {
            return Err("reply line not terminated by CRLF".to_owned());
        }
        self.pos += end + 1;
        Ok(Some(&rest[..end - 1]))
    }
}

/// A decimal integer.
fn number(text: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| format!("{:?} is not an integer", String::from_utf8_lossy(text)))
}

/// A length: `None` for -1 (nil), an error if negative otherwise or above `max`.
fn length(text: &[u8], max: usize) -> Result<Option<usize>, String> {
    let n = number(text)?;
    if n == -1 {
        return Ok(None);
    }
    match usize::try_from(n) {
        Ok(len) if len <= max => Ok(Some(len)),
        _ => Err(format!("length {n} out of range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Reply {
        let (reply, used) = parse(input).unwrap().unwrap();
        assert_eq!(used, input.len(), "{input:?}");
        reply
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        encode(&[b"HGET", b"h", b""], &mut out);
        assert_eq!(out, b"*3\r\n$4\r\nHGET\r\n$1\r\nh\r\n$0\r\n\r\n");
    }

    #[test]
    fn every_reply_type_parses() {
        assert_eq!(whole(b"+OK\r\n"), Reply::Status("OK".into()));
        assert_eq!(
            whole(b"-NOSCRIPT No matching script\r\n"),
            Reply::Error("NOSCRIPT No matching script".into())
        );
        assert_eq!(whole(b":-12\r\n"), Reply::Integer(-12));
        assert_eq!(
            whole(b"$5\r\na\r\nbc\r\n"),
            Reply::Bulk(b"a\r\nbc".to_vec())
        );
        assert_eq!(whole(b"$0\r\n\r\n"), Reply::Bulk(Vec::new()));
        assert_eq!(whole(b"$-1\r\n"), Reply::Nil);
        assert_eq!(whole(b"*-1\r\n"), Reply::Nil);
        assert_eq!(whole(b"*0\r\n"), Reply::Array(Vec::new()));
        assert_eq!(
            whole(b"*3\r\n$1\r\na\r\n:1\r\n*1\r\n$-1\r\n"),
            Reply::Array(vec![
                Reply::Bulk(b"a".to_vec()),
                Reply::Integer(1),
                Reply::Array(vec![Reply::Nil]),
            ])
        );
    }

    #[test]
    fn partial_replies_ask_for_more() {
        let full = b"*2\r\n$3\r\nabc\r\n:7\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut]).unwrap(), None, "cut at {cut}");
        }
        let mut two = full.to_vec();
        two.extend_from_slice(b"+OK\r\n");
        let (_, used) = parse(&two).unwrap().unwrap();
        assert_eq!(used, full.len());
    }

    #[test]
    fn malformed_replies_are_errors() {
        let long_line = [b"+".as_slice(), &[b'a'; MAX_LINE + 10]].concat();
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        for bad in [
            b"?what\r\n".as_slice(),
            b"\r\n",
            b"+OK\n",
            b":12x\r\n",
            b":\r\n",
            b"$-2\r\n",
            b"$abc\r\n",
            b"$99999999999\r\n",
            b"$3\r\nabcd\r\n",
            b"*-5\r\n",
            b"*99999999999\r\n",
            b"+\xff\xfe\r\n",
            &long_line,
            &deep,
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn huge_claimed_arrays_do_not_allocate_up_front() {
        // A million elements claimed, none sent: incomplete, not an allocation of
        // a million replies.
        assert_eq!(parse(b"*1000000\r\n").unwrap(), None);
    }
}
