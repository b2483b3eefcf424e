//! The refund result file checker on any bytes: it never panics, it hands every record of a file
//! it accepts to its callback in order, and what our writer makes of those records is accepted
//! again with the same header and records.

#![no_main]

use libfuzzer_sys::fuzz_target;
use formats::refund::{ResultHeader, ResultRecord, check_result};

fuzz_target!(|data: &[u8]| {
    let mut records = Vec::new();
    let Ok(Ok(header)) = check_result(data, |r| {
        records.push(r);
        Ok::<(), ()>(())
    }) else {
        return;
    };
    assert_eq!(records.len() as u64, header.record_count);
    let mut again = header.to_line();
    again.push('\n');
    for r in &records {
        again += &r.to_line();
        again.push('\n');
    }
    let mut seen = Vec::new();
    let reread = check_result(again.as_bytes(), |r| {
        seen.push(r);
        Ok::<(), ()>(())
    });
    assert_eq!(reread.expect("written back"), Ok(header.clone()));
    assert_eq!(seen, records);
    assert_eq!(ResultHeader::parse(&header.to_line()).expect("header"), header);
    for (i, r) in records.iter().enumerate() {
        let no = i as u64 + 2;
        assert_eq!(&ResultRecord::parse(no, &r.to_line()).expect("record"), r);
    }
});
