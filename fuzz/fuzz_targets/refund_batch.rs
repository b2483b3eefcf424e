//! The refund batch file checker on any bytes: it never panics, and a file it accepts, written
//! back by our own writer line by line, is accepted again with the same header and records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use formats::LineReader;
use formats::refund::{BatchHeader, BatchRecord, check_batch};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = check_batch(data) else {
        return;
    };
    let mut lines = LineReader::new(data);
    lines.next_line().expect("accepted").expect("a header");
    let mut records = Vec::new();
    while let Some((no, line)) = lines.next_line().expect("accepted") {
        records.push(BatchRecord::parse(no, line).expect("accepted"));
    }
    assert_eq!(records.len() as u64, header.record_count);
    let mut again = header.to_line();
    again.push('\n');
    for r in &records {
        again += &r.to_line();
        again.push('\n');
    }
    assert_eq!(check_batch(again.as_bytes()).expect("written back"), header);
    assert_eq!(BatchHeader::parse(&header.to_line()).expect("header"), header);
    for (i, r) in records.iter().enumerate() {
        let no = i as u64 + 2;
        assert_eq!(&BatchRecord::parse(no, &r.to_line()).expect("record"), r);
    }
});
