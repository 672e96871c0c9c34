//! The FTP control-line framing and command parser: whatever bytes arrive, in whatever pieces,
//! every framed line is bounded and free of line ends, every command has a verb, and every
//! refusal encodes as a well-formed RFC 959 reply.
#![no_main]

use bytes::BytesMut;
use filegate_ftpd::parser::{parse_command, Command, Line, LineReader};
use filegate_ftpd::reply::Reply;
use libfuzzer_sys::fuzz_target;

/// A reply is "NNN text\r\n" or the multi-line form, with no stray CR or LF.
fn well_formed(reply: &Reply) {
    let wire = reply.encode();
    assert!(wire.ends_with(b"\r\n"));
    let code = reply.code.as_u16();
    assert!((100..600).contains(&code));
    let lines: Vec<&[u8]> = wire[..wire.len() - 2].split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = if i + 1 < lines.len() { line.strip_suffix(b"\r").unwrap_or_else(|| panic!("bare LF")) } else { line };
        assert!(!line.contains(&b'\r'));
        if i == 0 || i + 1 == lines.len() {
            assert!(line.len() >= 4 && line[..3] == *code.to_string().as_bytes());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else {
        return;
    };
    // Feed the stream in two pieces, as TCP may deliver it.
    let cut = (split as usize).min(data.len());
    let mut reader = LineReader::default();
    let mut buf = BytesMut::new();
    for piece in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(piece);
        for _ in 0..10_000 {
            let Some(line) = reader.next_line(&mut buf) else {
                break;
            };
            let Line::Complete(line) = line else {
                continue;
            };
            assert!(line.len() <= filegate_ftpd::parser::MAX_LINE);
            assert!(!line.contains(&b'\n'));
            let cmd = parse_command(&line);
            // Only an empty line (which the session ignores) has no verb.
            assert!(!cmd.verb().is_empty() || cmd == Command::Empty);
            if let Command::Error(e) = &cmd {
                let reply = e.reply();
                assert!(reply.code.as_u16() >= 500, "a refusal is a 5xx");
                well_formed(&reply);
            }
        }
    }
});
