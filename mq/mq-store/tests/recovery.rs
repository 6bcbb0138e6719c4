//! Recovery: crash images (a copy of an open store's folder: `abort`
//! present, checkpoint from the last flush) with the tail of the last
//! commit log segment truncated or corrupted at many offsets; a child
//! process SIGKILLed right after SYNC_FLUSH writes; stray files.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{config, copy_dir, decode, msg, open, read_queue};
use mq_store::{FlushDiskType, MessageStore, PutResult};

struct Written {
    topic: String,
    queue_id: i32,
    result: PutResult,
    key: String,
}

/// Message `n` of the crash images: topic C0 or C1, queue 0-2, key
/// `key<n>`, 150-1049 bytes of body.
async fn put(store: &MessageStore, n: usize) -> Written {
    let topic = format!("C{}", n % 2);
    let queue_id = (n % 3) as i32;
    let m = msg(&topic, queue_id, n, 150 + (n * 53) % 900);
    Written {
        result: store.put_message(m).await.unwrap(),
        topic,
        queue_id,
        key: format!("key{n}"),
    }
}

/// Builds a crash image: a clean stop half way (so the checkpoint points
/// into the log), more writes, then a copy of the folder while still open.
async fn crash_image(dir: &Path) -> (PathBuf, Vec<Written>) {
    let live = dir.join("live");
    let mut written = Vec::new();
    {
        let store = open(&live);
        for n in 0..60 {
            written.push(put(&store, n).await);
        }
        store.shutdown().unwrap();
    }
    let store = open(&live);
    for n in 60..160 {
        written.push(put(&store, n).await);
    }
    let image = dir.join("image");
    copy_dir(&live, &image);
    assert!(image.join("abort").exists());
    drop(store);
    (image, written)
}

/// The last commit log segment holding data (the store may have created
/// the next one ahead of need, empty).
fn last_segment(root: &Path) -> (u64, PathBuf) {
    let mut segs: Vec<_> = std::fs::read_dir(root.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let p = segs
        .into_iter()
        .rev()
        .find(|p| std::fs::read(p).unwrap()[..8].iter().any(|&b| b != 0))
        .unwrap();
    (p.file_name().unwrap().to_str().unwrap().parse().unwrap(), p)
}

/// Opens a damaged copy and checks that exactly the messages ending at or
/// before `valid_end` survive, in every queue, the index and the log end.
fn check_recovered(root: &Path, written: &[Written], valid_end: u64) {
    let store = MessageStore::open(config(root)).expect("recovery opens the store");
    let survivors: Vec<&Written> = written
        .iter()
        .filter(|w| w.result.wrote_offset + w.result.wrote_bytes as u64 <= valid_end)
        .collect();
    let expected_end = survivors
        .last()
        .map_or(0, |w| w.result.wrote_offset + w.result.wrote_bytes as u64);
    // The log ends after the last whole message, or after the blank record
    // behind it when the first dropped message opened a new segment.
    let expected_end = match written
        .iter()
        .find(|w| w.result.wrote_offset >= expected_end)
    {
        Some(w) if w.result.wrote_offset % (64 * 1024) == 0 => w.result.wrote_offset,
        _ => expected_end,
    };
    assert_eq!(
        store.commit_log_max_offset(),
        expected_end,
        "log end (cut {valid_end})"
    );
    let mut per_queue: HashMap<(String, i32), Vec<&Written>> = HashMap::new();
    for w in &survivors {
        per_queue
            .entry((w.topic.clone(), w.queue_id))
            .or_default()
            .push(w);
    }
    for topic in ["C0", "C1"] {
        for qid in 0..3 {
            let got = read_queue(&store, topic, qid);
            let want = per_queue
                .get(&(topic.to_owned(), qid))
                .map_or(&[][..], Vec::as_slice);
            assert_eq!(
                got.len(),
                want.len(),
                "{topic}/{qid} keeps exactly the survivors (cut {valid_end})"
            );
            for (bytes, w) in got.iter().zip(want) {
                let m = decode(bytes);
                assert_eq!(m.commit_log_offset as u64, w.result.wrote_offset);
                assert_eq!(m.queue_offset as u64, w.result.queue_offset);
            }
            assert_eq!(store.max_offset_in_queue(topic, qid), want.len() as u64);
        }
    }
    // The index knows survivors and forgets the dropped.
    for w in written.iter().rev().take(12) {
        let hits = store.query_message(&w.topic, &w.key, 4, 0, i64::MAX);
        let survived = w.result.wrote_offset + w.result.wrote_bytes as u64 <= valid_end;
        assert_eq!(
            hits.len(),
            usize::from(survived),
            "index for {} (cut {valid_end})",
            w.key
        );
    }
    drop(store);
}

#[tokio::test]
async fn truncated_tail_at_many_offsets_keeps_exactly_the_whole_messages() {
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = crash_image(dir.path()).await;
    let (seg_start, _) = last_segment(&image);
    let end = written
        .last()
        .map(|w| w.result.wrote_offset + w.result.wrote_bytes as u64)
        .unwrap();
    let mut cuts: Vec<u64> = (seg_start..end).step_by(389).collect();
    // Right at, just after and just before message boundaries too.
    for w in written
        .iter()
        .filter(|w| w.result.wrote_offset >= seg_start)
        .step_by(2)
    {
        cuts.extend([
            w.result.wrote_offset,
            w.result.wrote_offset + 1,
            w.result.wrote_offset + 9,
        ]);
        cuts.push(w.result.wrote_offset + w.result.wrote_bytes as u64 - 1);
    }
    cuts.push(end);
    assert!(cuts.len() > 40, "{} cuts", cuts.len());
    for (i, cut) in cuts.into_iter().enumerate() {
        let case = dir.path().join(format!("t{i}"));
        copy_dir(&image, &case);
        let (_, seg) = last_segment(&case);
        // Alternate: a shorter file, or zeros from the cut on.
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        let at = cut - seg_start;
        if i % 2 == 0 {
            f.set_len(at).unwrap();
        } else {
            use std::os::unix::fs::FileExt;
            let len = f.metadata().unwrap().len();
            f.write_all_at(&vec![0u8; (len - at) as usize], at).unwrap();
        }
        drop(f);
        check_recovered(&case, &written, cut);
        if i % 4 == 0 {
            // Recovery is idempotent and the store is writable afterwards.
            let store = open(&case);
            assert_eq!(
                store.put_message(msg("C0", 0, 5, 10)).await.unwrap().status,
                mq_store::PutStatus::PutOk
            );
            store.shutdown().unwrap();
            drop(store);
        }
        std::fs::remove_dir_all(&case).unwrap();
    }
}

#[tokio::test]
async fn corrupted_tail_at_many_offsets_drops_the_corrupt_message_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = crash_image(dir.path()).await;
    let (seg_start, _) = last_segment(&image);
    let mut cases = Vec::new();
    for (k, w) in written
        .iter()
        .filter(|w| w.result.wrote_offset >= seg_start)
        .enumerate()
    {
        let start = w.result.wrote_offset;
        // TOTALSIZE, MAGICCODE, BODYCRC, PHYSICALOFFSET, and the body (it starts at 96
        // for IPv4 hosts), plus a garbage fill from the middle.
        let within = [0u64, 2, 5, 9, 30, 96 + (k as u64 * 7) % 100];
        cases.extend(within.iter().map(|d| (start, start + d, false)));
        cases.push((start, start + 40 + (k as u64 * 13) % 60, true));
    }
    assert!(cases.len() > 50);
    for (i, (msg_start, at, fill)) in cases.into_iter().enumerate() {
        let case = dir.path().join(format!("c{i}"));
        copy_dir(&image, &case);
        let (_, seg) = last_segment(&case);
        let mut data = std::fs::read(&seg).unwrap();
        let pos = (at - seg_start) as usize;
        if fill {
            let to = (pos + 5000).min(data.len());
            data[pos..to].fill(0xAB);
        } else {
            data[pos] ^= 0x5A;
        }
        std::fs::write(&seg, &data).unwrap();
        check_recovered(&case, &written, msg_start);
        std::fs::remove_dir_all(&case).unwrap();
    }
}

#[tokio::test]
async fn recovered_store_keeps_writing_with_the_right_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = crash_image(dir.path()).await;
    // Drop the last message.
    let last = &written.last().unwrap().result;
    let (seg_start, seg) = last_segment(&image);
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(last.wrote_offset - seg_start + 3).unwrap();
    drop(f);
    let store = open(&image);
    assert_eq!(store.commit_log_max_offset(), last.wrote_offset);
    let w = written.last().unwrap();
    let r = store
        .put_message(msg(&w.topic, w.queue_id, 7777, 100))
        .await
        .unwrap();
    assert_eq!(r.wrote_offset, last.wrote_offset);
    assert_eq!(
        r.queue_offset, last.queue_offset,
        "the dropped message's queue offset is reused"
    );
    store.shutdown().unwrap();
    drop(store);
    let store = open(&image);
    let q = read_queue(&store, &w.topic, w.queue_id);
    assert_eq!(
        decode(q.last().unwrap()).born_timestamp,
        1_700_000_000_000 + 7777
    );
}

#[tokio::test]
async fn stray_files_in_store_folders_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.put_message(msg("S", 0, 0, 10)).await.unwrap();
    }
    std::fs::write(dir.path().join("commitlog/README"), b"x").unwrap();
    std::fs::write(dir.path().join("consumequeue/S/0/.swp"), b"x").unwrap();
    std::fs::write(dir.path().join("consumequeue/S/notaqueue"), b"x").unwrap();
    std::fs::write(dir.path().join("index/junk"), b"x").unwrap();
    let store = open(dir.path());
    assert_eq!(read_queue(&store, "S", 0).len(), 1);
}

const CHILD_DIR_ENV: &str = "MQ_STORE_SIGKILL_CHILD_DIR";

/// Not a test on its own: the child half of
/// `sync_flush_survives_sigkill_right_after_the_ack`, run by the parent
/// through this test binary. Writes under SYNC_FLUSH forever, printing
/// `ACK <offset> <size> <n>` after each acknowledged put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of sync_flush_survives_sigkill_right_after_the_ack"]
async fn sigkill_child_writer() {
    let Some(root) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let mut c = config(Path::new(&root));
    c.flush_disk_type = FlushDiskType::SyncFlush;
    let store = MessageStore::open(c).unwrap();
    for n in 0.. {
        let r = store
            .put_message(msg("K", (n % 4) as i32, n, 300 + n % 700))
            .await
            .unwrap();
        assert_eq!(r.status, mq_store::PutStatus::PutOk);
        println!("ACK {} {} {}", r.wrote_offset, r.wrote_bytes, n);
    }
}

#[test]
fn sync_flush_survives_sigkill_right_after_the_ack() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigkill_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            acked.push((v[0], v[1], v[2] as usize));
            if acked.len() == 400 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
                           // Acks printed before the kill landed count too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(rest) = line.strip_prefix("ACK ") {
            let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            acked.push((v[0], v[1], v[2] as usize));
        }
    }
    child.wait().unwrap();
    assert!(
        acked.len() >= 400,
        "child acknowledged {} messages",
        acked.len()
    );
    assert!(
        dir.path().join("abort").exists(),
        "the child did not stop cleanly"
    );

    let store = open(dir.path());
    for (offset, size, n) in &acked {
        let m = store
            .look_message_by_offset(*offset)
            .unwrap_or_else(|| panic!("acknowledged message {n} at {offset} lost"));
        let expected = msg("K", (n % 4) as i32, *n, 300 + n % 700);
        assert_eq!(m.body, expected.body, "message {n}");
        assert_eq!(m.store_size, *size as usize);
        let r = store.get_message("K", m.queue_id, m.queue_offset as u64, 1, 1 << 20, &|_| {
            true
        });
        assert_eq!(
            decode(&r.messages[0]),
            m,
            "message {n} is in its consume queue"
        );
    }
}

/// A crash in the middle of a large preallocated segment, with a corrupt
/// record and well-formed records after it over many pages (what a power
/// cut that wrote later pages but not an earlier one leaves): reopening
/// keeps exactly the records before the corrupt one, and the dropped
/// records never come back, not even when new records of the same size
/// end exactly where a dropped one starts and the store crashes again.
#[tokio::test]
async fn dropped_records_in_a_preallocated_segment_stay_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let cfg = |root: &Path| {
        let mut c = config(root);
        c.maped_file_size_commit_log = 8 << 20;
        // No checkpoint while the first run writes: recovery of its image
        // scans from the start and meets the corrupt record.
        c.flush_interval_consume_queue = 3_600_000;
        c
    };
    // Same-size messages (numbers of three digits: the same properties
    // length): new records line up with the dropped ones.
    let m = |n: usize| msg("P", 0, n, 1000);
    let mut written = Vec::new();
    {
        let store = MessageStore::open(cfg(&live)).unwrap();
        for n in 100..400 {
            written.push(store.put_message(m(n)).await.unwrap());
        }
        let image = dir.path().join("a");
        copy_dir(&live, &image);
        store.shutdown().unwrap();
    }
    let image = dir.path().join("a");
    let seg = image.join("commitlog").join("00000000000000000000");
    // Corrupt message 40's body: it and everything after are dropped.
    let bad = written[40].wrote_offset as usize;
    let mut data = std::fs::read(&seg).unwrap();
    data[bad + 200] ^= 0x5A;
    std::fs::write(&seg, &data).unwrap();
    {
        let store = MessageStore::open(cfg(&image)).unwrap();
        assert_eq!(store.commit_log_max_offset(), written[40].wrote_offset);
        assert_eq!(read_queue(&store, "P", 0).len(), 40);
        // Ten new messages take the places of 40..50.
        for n in 700..710 {
            let r = store.put_message(m(n)).await.unwrap();
            assert_eq!(r.wrote_offset, written[n - 660].wrote_offset);
        }
        // Crash again: a copy of the open store.
        copy_dir(&image, &dir.path().join("b"));
    }
    let store = MessageStore::open(cfg(&dir.path().join("b"))).unwrap();
    assert!(store.recovery().crashed);
    assert_eq!(
        store.commit_log_max_offset(),
        written[50].wrote_offset,
        "records 50.. of the first run stay dropped"
    );
    let q = read_queue(&store, "P", 0);
    assert_eq!(q.len(), 50);
    for (i, bytes) in q.iter().enumerate() {
        let want = if i < 40 { 100 + i } else { 660 + i };
        assert_eq!(
            decode(bytes).born_timestamp,
            1_700_000_000_000 + want as i64
        );
    }
    for n in [150, 220, 399] {
        assert!(
            store
                .query_message("P", &format!("key{n}"), 4, 0, i64::MAX)
                .is_empty(),
            "key{n} is not indexed"
        );
    }
    // The rest of the segment reads as zeroes on disk.
    drop(store);
    let data = std::fs::read(dir.path().join("b/commitlog/00000000000000000000")).unwrap();
    let end = written[50].wrote_offset as usize;
    assert!(data[end..].iter().all(|&b| b == 0));
}

/// After a crash, recovery starts where the checkpoint says everything was
/// flushed, for the commit log scan and for the consume queue and index
/// re-dispatch (not from the first segment or the start of the index
/// file), and rebuilds exactly what was lost.
#[tokio::test]
async fn recovery_after_a_crash_starts_at_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let clean_end;
    {
        let store = open(&live);
        for n in 0..200 {
            store
                .put_message(msg("R", (n % 2) as i32, n, 300))
                .await
                .unwrap();
        }
        clean_end = store.commit_log_max_offset();
        store.shutdown().unwrap();
    }
    let image = dir.path().join("image");
    let end;
    {
        let store = open(&live);
        assert!(!store.recovery().crashed);
        assert_eq!(store.recovery().redispatched, 0);
        for n in 200..230 {
            store
                .put_message(msg("R", (n % 2) as i32, n, 300))
                .await
                .unwrap();
        }
        end = store.commit_log_max_offset();
        copy_dir(&live, &image);
    }
    let store = open(&image);
    let r = store.recovery();
    assert!(r.crashed);
    assert!(r.scanned_from >= clean_end, "{r:?}, clean end {clean_end}");
    assert!(
        (clean_end..=end).contains(&r.redispatched_from),
        "{r:?}, clean end {clean_end}"
    );
    assert!(r.redispatched <= 30, "{r:?}");
    assert_eq!(r.commit_log_end, end);
    assert_eq!(
        read_queue(&store, "R", 0).len() + read_queue(&store, "R", 1).len(),
        230
    );
    for n in [0, 150, 199, 200, 229] {
        assert_eq!(
            store
                .query_message("R", &format!("key{n}"), 4, 0, i64::MAX)
                .len(),
            1,
            "key{n}"
        );
    }
}

/// Waits (at most 30 s) until the commit log segment at `start` exists.
async fn segment_appears(root: &Path, start: u64) -> PathBuf {
    let path = root.join("commitlog").join(format!("{start:020}"));
    for _ in 0..600 {
        if path.exists() {
            return path;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} was not created ahead", path.display());
}

/// The store creates the next segment ahead once the last is half written,
/// and a roll takes it. A crash while the data ends inside such a segment,
/// with the one after it already created (empty), recovers exactly the
/// whole messages before a cut, removes the empty segment, and keeps
/// writing at the right offsets.
#[tokio::test]
async fn a_crash_in_a_segment_created_ahead_recovers_like_any_other() {
    const SEG: u64 = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let store = open(&live);
    let end = |w: &[Written]| {
        w.last()
            .map_or(0, |w| w.result.wrote_offset + w.result.wrote_bytes as u64)
    };
    let mut written = Vec::new();
    let mut n = 0;
    while end(&written) < SEG / 2 + 2048 {
        written.push(put(&store, n).await);
        n += 1;
    }
    segment_appears(&live, SEG).await;
    // Into the pre-created segment, past its half: the next is made too.
    while end(&written) < SEG + SEG / 2 + 2048 {
        written.push(put(&store, n).await);
        n += 1;
    }
    assert!(
        written.iter().any(|w| w.result.wrote_offset == SEG),
        "a message opened the pre-created segment"
    );
    let spare = segment_appears(&live, 2 * SEG).await;
    let image = dir.path().join("image");
    copy_dir(&live, &image);
    drop(store);
    assert_eq!(
        last_segment(&image).0,
        SEG,
        "the data ends in the segment made ahead"
    );
    let spare = image.join("commitlog").join(spare.file_name().unwrap());
    assert!(spare.exists());

    let data_end = end(&written);
    let boundaries = written
        .iter()
        .filter(|w| w.result.wrote_offset >= SEG)
        .map(|w| w.result.wrote_offset);
    let mut cuts: Vec<u64> = boundaries.clone().step_by(3).collect();
    cuts.extend(boundaries.step_by(4).map(|b| b + 11));
    cuts.push(data_end);
    for (i, cut) in cuts.into_iter().enumerate() {
        let case = dir.path().join(format!("p{i}"));
        copy_dir(&image, &case);
        let seg = case.join("commitlog").join(format!("{SEG:020}"));
        {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
            let at = cut - SEG;
            f.write_all_at(&vec![0u8; (SEG - at) as usize], at).unwrap();
        }
        check_recovered(&case, &written, cut);
        let next = case.join("commitlog").join(format!("{:020}", 2 * SEG));
        if cut - SEG < SEG / 2 {
            assert!(
                !next.exists(),
                "the empty segment past the end is removed (cut {cut})"
            );
        } else if next.exists() {
            // Past half the reopened store may make it again: empty.
            assert!(std::fs::read(&next).unwrap().iter().all(|&b| b == 0));
        }
        let store = open(&case);
        let kept = written
            .iter()
            .rfind(|w| w.result.wrote_offset + w.result.wrote_bytes as u64 <= cut)
            .map_or(SEG, |w| w.result.wrote_offset + w.result.wrote_bytes as u64);
        let r = store.put_message(msg("C0", 0, 9_999, 100)).await.unwrap();
        assert_eq!(
            r.wrote_offset,
            kept.max(SEG),
            "writing goes on at the end (cut {cut})"
        );
        store.shutdown().unwrap();
        drop(store);
        std::fs::remove_dir_all(&case).unwrap();
    }
}
