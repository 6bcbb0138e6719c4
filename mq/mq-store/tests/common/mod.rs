//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use bytes::Bytes;
use mq_protocol::MessageExt;
use mq_store::{FlushDiskType, MessageStore, MessageStoreConfig, PutMessage};

/// A small store: 64 KiB commit log segments, 50-entry consume queue
/// segments, small index files.
pub fn config(root: &Path) -> MessageStoreConfig {
    let mut c = MessageStoreConfig::with_root(root);
    c.maped_file_size_commit_log = 64 * 1024;
    c.maped_file_size_consume_queue = 50 * 20;
    c.max_message_size = 16 * 1024;
    c.max_hash_slot_num = 97;
    c.max_index_num = 400;
    c.flush_disk_type = FlushDiskType::AsyncFlush;
    c
}

pub fn open(root: &Path) -> MessageStore {
    MessageStore::open(config(root)).expect("open store")
}

/// A message whose body is `body` and whose properties carry TAGS, KEYS
/// and UNIQ_KEY derived from `n`.
pub fn msg(topic: &str, queue_id: i32, n: usize, body_len: usize) -> PutMessage {
    let body: Vec<u8> = (0..body_len)
        .map(|i| (i.wrapping_mul(31) + n) as u8 | 1)
        .collect();
    PutMessage {
        topic: topic.to_owned(),
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000 + n as i64,
        born_host: "10.0.0.1:40000".parse().unwrap(),
        store_host: "127.0.0.1:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from(body),
        properties: format!(
            "TAGS\u{1}tag{}\u{2}KEYS\u{1}key{n} all\u{2}UNIQ_KEY\u{1}UNIQ{n:08}\u{2}",
            n % 3
        ),
    }
}

pub fn decode(bytes: &[u8]) -> MessageExt {
    MessageExt::decode(bytes, true)
        .expect("stored message decodes")
        .0
}

/// Every message of a queue, as raw bytes, read through `get_message`.
pub fn read_queue(store: &MessageStore, topic: &str, queue_id: i32) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = store.min_offset_in_queue(topic, queue_id);
    loop {
        let r = store.get_message(topic, queue_id, offset, 32, 1 << 20, &|_| true);
        if r.messages.is_empty() && r.next_begin_offset == offset {
            return out;
        }
        out.extend(r.messages);
        offset = r.next_begin_offset;
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
