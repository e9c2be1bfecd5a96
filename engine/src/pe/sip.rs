//! The SIP persistence engine's key: the Call-ID of a SIP message, found
//! the way the kernel's `ip_vs_pe_sip` finds it (`get_callid` over
//! nf_conntrack_sip's `ct_sip_get_header` and `callid_len`).
//!
//! The rules, as the kernel has them:
//! - a header starts a line: after CR, LF or CRLF, and not a
//!   continuation line (one starting with a space or tab); so the first
//!   line (the request or status line) is never a header;
//! - the name is `Call-Id` (compared case-insensitively, and not required
//!   to end there: `Call-Idx:` is not a Call-ID only because no colon
//!   follows the name) or the compact `i` followed by a non-letter;
//! - between name and colon, and after the colon, spaces and folded
//!   continuation lines (CR/LF then spaces or tabs) are skipped — a tab
//!   right after the name or the colon is not, and after a fold the
//!   first non-blank character is stepped over as well (the kernel's
//!   `sip_skip_whitespace` loop increments past it);
//! - a name not followed by its colon ends the search: no Call-ID;
//! - the value is a word (letters, digits and ``!"%()*+,-./:<>?[\]_`{}~``,
//!   as `iswordc`), optionally `@` and a second, non-empty word;
//!   an empty value skips to the next Call-ID header;
//! - the value must be at most [`MAX_CALL_ID`] bytes and be followed by
//!   CR or LF (not the end of the datagram, not `;` or a space).
//!
//! Every loop is bounded by the datagram: each step moves forward.

/// Longest Call-ID used as a persistence key: IPVS's
/// `IP_VS_PEDATA_MAXLEN`. A longer one is refused (the packet falls back
/// to address persistence, as in the kernel).
pub const MAX_CALL_ID: usize = 255;

/// Why no Call-ID key was taken from a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallIdError {
    /// No (well-formed) Call-ID header.
    Missing,
    /// The Call-ID is longer than [`MAX_CALL_ID`] bytes.
    TooLong,
    /// The Call-ID is not followed by a line end.
    Unterminated,
}

/// The Call-ID of the SIP message in a UDP payload, as `ip_vs_pe_sip`
/// takes it (see the module documentation for the rules).
pub fn call_id(payload: &[u8]) -> Result<&[u8], CallIdError> {
    let mut from = 0usize;
    let (start, len) = loop {
        match get_header(payload, from) {
            Header::Found { start, len } => break (start, len),
            Header::None => return Err(CallIdError::Missing),
            // An empty value: search on from where its value would start
            // (the kernel adds the match offset to its search offset).
            Header::Empty { at } => {
                let next = from.saturating_add(at);
                if next <= from {
                    return Err(CallIdError::Missing);
                }
                from = next;
            }
        }
    };
    if len > MAX_CALL_ID {
        return Err(CallIdError::TooLong);
    }
    match payload.get(start + len) {
        Some(b'\r' | b'\n') => payload.get(start..start + len).ok_or(CallIdError::Missing),
        _ => Err(CallIdError::Unterminated),
    }
}

enum Header {
    /// A Call-ID value at `start`, `len` bytes.
    Found { start: usize, len: usize },
    /// A Call-ID header with an empty value at `at`.
    Empty { at: usize },
    /// None.
    None,
}

const NAME: &[u8] = b"call-id";
const COMPACT: u8 = b'i';

/// `ct_sip_get_header(.., SIP_HDR_CALL_ID, ..)` from offset `from`.
fn get_header(data: &[u8], from: usize) -> Header {
    let limit = data.len();
    let mut p = from;
    while p < limit {
        // Find the beginning of a line.
        if !is_eol(data[p]) {
            p += 1;
            continue;
        }
        p += 1;
        if p >= limit {
            break;
        }
        if data[p - 1] == b'\r' && data[p] == b'\n' {
            p += 1;
            if p >= limit {
                break;
            }
        }
        // Skip continuation lines.
        if data[p] == b' ' || data[p] == b'\t' {
            p += 1;
            continue;
        }
        // The full name, or the compact one followed by a non-letter.
        if limit - p >= NAME.len() && data[p..p + NAME.len()].eq_ignore_ascii_case(NAME) {
            p += NAME.len();
        } else if limit - p > 1
            && data[p].eq_ignore_ascii_case(&COMPACT)
            && !data[p + 1].is_ascii_alphabetic()
        {
            p += 1;
        } else {
            p += 1;
            continue;
        }
        // Find and skip the colon.
        let Some(q) = skip_whitespace(data, p) else {
            break;
        };
        if data.get(q) != Some(&b':') || q + 1 >= limit {
            break;
        }
        let Some(value) = skip_whitespace(data, q + 1) else {
            break;
        };
        let len = callid_len(data, value);
        if len == 0 {
            return Header::Empty { at: value };
        }
        return Header::Found { start: value, len };
    }
    Header::None
}

fn is_eol(byte: u8) -> bool {
    byte == b'\r' || byte == b'\n'
}

/// `sip_follow_continuation`: from a line end at `p`, the first non-blank
/// of the continuation line, or `None` if the next line is not one.
fn follow_continuation(data: &[u8], p: usize) -> Option<usize> {
    let limit = data.len();
    let mut p = p + 1;
    if p >= limit {
        return None;
    }
    if data[p - 1] == b'\r' && data[p] == b'\n' {
        p += 1;
        if p >= limit {
            return None;
        }
    }
    if data[p] != b' ' && data[p] != b'\t' {
        return None;
    }
    while p < limit && (data[p] == b' ' || data[p] == b'\t') {
        p += 1;
    }
    Some(p)
}

/// `sip_skip_whitespace`: spaces and folded line ends; `None` when a line
/// end is not folded. May return `data.len()`.
fn skip_whitespace(data: &[u8], mut p: usize) -> Option<usize> {
    while p < data.len() {
        match data[p] {
            b' ' => p += 1,
            b'\r' | b'\n' => {
                // The kernel's loop increments past the continuation's
                // first non-blank too, without looking at it.
                p = follow_continuation(data, p)? + 1;
            }
            _ => break,
        }
    }
    Some(p)
}

/// nf_conntrack_sip's `iswordc`.
fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'"' | b'%' | b'(' ..=b'/' | b':' | b'<' | b'>' | b'?' | b'['..=b']' | b'_'
                | b'`' | b'{' | b'}' | b'~'
        )
}

fn word_len(data: &[u8], from: usize) -> usize {
    data.get(from..).map_or(0, |rest| {
        rest.iter().take_while(|&&c| is_word_char(c)).count()
    })
}

/// `callid_len`: a word, optionally `@` and a non-empty word.
fn callid_len(data: &[u8], from: usize) -> usize {
    let len = word_len(data, from);
    let at = from + len;
    if len == 0 || data.get(at) != Some(&b'@') {
        return len;
    }
    let domain = word_len(data, at + 1);
    if domain == 0 {
        return 0;
    }
    len + 1 + domain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(msg: &str) -> Result<&str, CallIdError> {
        call_id(msg.as_bytes()).map(|b| std::str::from_utf8(b).unwrap())
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\r\n";

    #[test]
    fn full_and_compact_header_names_any_case() {
        for header in [
            "Call-ID: a84b4c76e66710",
            "call-id: a84b4c76e66710",
            "CALL-ID:a84b4c76e66710",
            "i: a84b4c76e66710",
            "I:a84b4c76e66710",
        ] {
            assert_eq!(
                id(&format!(
                    "{INVITE}Via: SIP/2.0/UDP h\r\n{header}\r\nCSeq: 1 INVITE\r\n\r\n"
                )),
                Ok("a84b4c76e66710"),
                "{header}"
            );
        }
    }

    #[test]
    fn value_with_a_host_part() {
        assert_eq!(
            id(&format!(
                "{INVITE}Call-ID: 3848276298220188511@atlanta.example.com\r\n"
            )),
            Ok("3848276298220188511@atlanta.example.com")
        );
        // `@` with nothing after it is no value: no Call-ID.
        assert_eq!(
            id(&format!("{INVITE}Call-ID: abc@\r\n")),
            Err(CallIdError::Missing)
        );
    }

    #[test]
    fn line_ends_cr_lf_or_crlf() {
        for eol in ["\r\n", "\n", "\r"] {
            let msg = format!("REGISTER sip:x SIP/2.0{eol}Call-ID: k1{eol}{eol}");
            assert_eq!(id(&msg), Ok("k1"), "{eol:?}");
        }
    }

    #[test]
    fn folding_and_whitespace_as_the_kernel_skips_them() {
        // Spaces before and after the colon.
        assert_eq!(id(&format!("{INVITE}Call-ID   :   k2\r\n")), Ok("k2"));
        // The value folded onto a continuation line: the kernel's
        // sip_skip_whitespace steps over the first character there too.
        assert_eq!(id(&format!("{INVITE}Call-ID:\r\n   k3\r\n")), Ok("3"));
        assert_eq!(id(&format!("{INVITE}Call-ID:\r\n\tk3\r\n")), Ok("3"));
        // Folding between the name and the colon: the colon is the
        // character stepped over, so there is no Call-ID.
        assert_eq!(
            id(&format!("{INVITE}Call-ID\r\n  :k3\r\n")),
            Err(CallIdError::Missing)
        );
        // A tab right after the colon is not skipped: empty value, no key.
        assert_eq!(
            id(&format!("{INVITE}Call-ID:\tk4\r\n")),
            Err(CallIdError::Missing)
        );
        // A continuation line is never a header of its own.
        assert_eq!(
            id(&format!("{INVITE}Subject: x\r\n Call-ID: k5\r\n")),
            Err(CallIdError::Missing)
        );
    }

    #[test]
    fn the_first_line_is_never_a_header() {
        assert_eq!(id("Call-ID: k6\r\n"), Err(CallIdError::Missing));
        assert_eq!(id("\r\nCall-ID: k6\r\n"), Ok("k6"));
    }

    #[test]
    fn compact_name_needs_a_non_letter_after_it() {
        assert_eq!(
            id(&format!("{INVITE}If-Match: x\r\nCall-ID: k7\r\n")),
            Ok("k7"),
            "`If` is not `i`"
        );
        // `i` then a non-letter but no colon ends the search (as in the
        // kernel), even with a Call-ID further on.
        assert_eq!(
            id(&format!("{INVITE}i-x: y\r\nCall-ID: k8\r\n")),
            Err(CallIdError::Missing)
        );
    }

    #[test]
    fn the_value_must_end_its_line() {
        assert_eq!(
            id(&format!("{INVITE}Call-ID: k9")),
            Err(CallIdError::Unterminated)
        );
        assert_eq!(
            id(&format!("{INVITE}Call-ID: k9;x=1\r\n")),
            Err(CallIdError::Unterminated)
        );
        assert_eq!(
            id(&format!("{INVITE}Call-ID: k9 \r\n")),
            Err(CallIdError::Unterminated)
        );
    }

    #[test]
    fn empty_value_moves_on_to_the_next_header() {
        assert_eq!(
            id(&format!("{INVITE}Call-ID: ;\r\nX: 1\r\nCall-ID: k10\r\n")),
            Ok("k10")
        );
    }

    #[test]
    fn missing_and_oversized_call_ids() {
        assert_eq!(
            id(&format!("{INVITE}CSeq: 1 INVITE\r\n\r\n")),
            Err(CallIdError::Missing)
        );
        assert_eq!(id(""), Err(CallIdError::Missing));
        let longest = "a".repeat(MAX_CALL_ID);
        assert_eq!(
            id(&format!("{INVITE}Call-ID: {longest}\r\n")),
            Ok(longest.as_str())
        );
        let long = "a".repeat(MAX_CALL_ID + 1);
        assert_eq!(
            id(&format!("{INVITE}Call-ID: {long}\r\n")),
            Err(CallIdError::TooLong)
        );
    }

    #[test]
    fn never_panics_on_any_prefix_of_a_message() {
        let msg = format!("{INVITE}Call-ID :\r\n \r\n\tk@h\r\ni:\r\n");
        for end in 0..=msg.len() {
            let _ = call_id(&msg.as_bytes()[..end]);
        }
        for bytes in [
            &b"\r"[..],
            b"\n\n",
            b"\r\ni",
            b"\r\ni:",
            b"\r\ncall-id",
            b"\r\ncall-id :\r",
        ] {
            assert!(call_id(bytes).is_err());
        }
    }
}
