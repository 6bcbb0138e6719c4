//! Request, response and language codes, numbered as in Apache RocketMQ's
//! `RequestCode`, `ResponseCode` and `LanguageCode` tables. A test pins a sample
//! of the numbers so an accidental edit cannot drift from the wire.

macro_rules! request_codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr,)*) => {
        /// Request codes (the `code` of a request frame).
        pub mod request_code {
            $($(#[$doc])* pub const $name: i32 = $value;)*
        }

        /// Every request code we know, with its RocketMQ name, for logs and
        /// for `mqadmin` output.
        pub const REQUEST_CODES: &[(i32, &str)] = &[$(($value, stringify!($name)),)*];
    };
}

request_codes! {
    SEND_MESSAGE = 10,
    PULL_MESSAGE = 11,
    QUERY_MESSAGE = 12,
    QUERY_BROKER_OFFSET = 13,
    QUERY_CONSUMER_OFFSET = 14,
    UPDATE_CONSUMER_OFFSET = 15,
    UPDATE_AND_CREATE_TOPIC = 17,
    GET_ALL_TOPIC_CONFIG = 21,
    GET_TOPIC_CONFIG_LIST = 22,
    GET_TOPIC_NAME_LIST = 23,
    UPDATE_BROKER_CONFIG = 25,
    GET_BROKER_CONFIG = 26,
    TRIGGER_DELETE_FILES = 27,
    GET_BROKER_RUNTIME_INFO = 28,
    SEARCH_OFFSET_BY_TIMESTAMP = 29,
    GET_MAX_OFFSET = 30,
    GET_MIN_OFFSET = 31,
    GET_EARLIEST_MSG_STORETIME = 32,
    VIEW_MESSAGE_BY_ID = 33,
    HEART_BEAT = 34,
    UNREGISTER_CLIENT = 35,
    CONSUMER_SEND_MSG_BACK = 36,
    END_TRANSACTION = 37,
    GET_CONSUMER_LIST_BY_GROUP = 38,
    CHECK_TRANSACTION_STATE = 39,
    NOTIFY_CONSUMER_IDS_CHANGED = 40,
    LOCK_BATCH_MQ = 41,
    UNLOCK_BATCH_MQ = 42,
    GET_ALL_CONSUMER_OFFSET = 43,
    GET_ALL_DELAY_OFFSET = 45,
    CHECK_CLIENT_CONFIG = 46,
    /// RocketMQ 5's code, with our own body: the master's timer checkpoint
    /// as JSON (see the broker's `metadata::timer`), not RocketMQ's binary
    /// `timercheck` file; a slave copies it.
    GET_TIMER_CHECK_POINT = 60,
    PUT_KV_CONFIG = 100,
    GET_KV_CONFIG = 101,
    DELETE_KV_CONFIG = 102,
    REGISTER_BROKER = 103,
    UNREGISTER_BROKER = 104,
    GET_ROUTEINFO_BY_TOPIC = 105,
    GET_BROKER_CLUSTER_INFO = 106,
    UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200,
    GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201,
    GET_TOPIC_STATS_INFO = 202,
    GET_CONSUMER_CONNECTION_LIST = 203,
    GET_PRODUCER_CONNECTION_LIST = 204,
    WIPE_WRITE_PERM_OF_BROKER = 205,
    GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206,
    DELETE_SUBSCRIPTIONGROUP = 207,
    GET_CONSUME_STATS = 208,
    RESET_CONSUMER_OFFSET_IN_CONSUMER = 211,
    DELETE_TOPIC_IN_BROKER = 215,
    DELETE_TOPIC_IN_NAMESRV = 216,
    REGISTER_TOPIC_IN_NAMESRV = 217,
    GET_KVLIST_BY_NAMESPACE = 219,
    RESET_CONSUMER_CLIENT_OFFSET = 220,
    GET_CONSUMER_STATUS_FROM_CLIENT = 221,
    INVOKE_BROKER_TO_RESET_OFFSET = 222,
    INVOKE_BROKER_TO_GET_CONSUMER_STATUS = 223,
    GET_TOPICS_BY_CLUSTER = 224,
    QUERY_TOPIC_CONSUME_BY_WHO = 300,
    QUERY_CONSUME_TIME_SPAN = 303,
    GET_SYSTEM_TOPIC_LIST_FROM_NS = 304,
    GET_SYSTEM_TOPIC_LIST_FROM_BROKER = 305,
    CLEAN_EXPIRED_CONSUMEQUEUE = 306,
    GET_CONSUMER_RUNNING_INFO = 307,
    QUERY_CORRECTION_OFFSET = 308,
    CONSUME_MESSAGE_DIRECTLY = 309,
    SEND_MESSAGE_V2 = 310,
    CLONE_GROUP_OFFSET = 314,
    VIEW_BROKER_STATS_DATA = 315,
    CLEAN_UNUSED_TOPIC = 316,
    GET_BROKER_CONSUME_STATS = 317,
    UPDATE_NAMESRV_CONFIG = 318,
    GET_NAMESRV_CONFIG = 319,
    SEND_BATCH_MESSAGE = 320,
    QUERY_CONSUME_QUEUE = 321,
    QUERY_DATA_VERSION = 322,
    RESUME_CHECK_HALF_MESSAGE = 323,
    ADD_WRITE_PERM_OF_BROKER = 327,
    GET_TOPIC_CONFIG = 351,
    GET_SUBSCRIPTIONGROUP_CONFIG = 352,
    /// Our extension, outside RocketMQ's table: the half messages a broker
    /// still waits on an outcome for, with their age and check count (JSON).
    GET_TRANSACTION_HALF_STATUS = 4001,
}

/// The RocketMQ name of a request code, if we know it.
pub fn request_code_name(code: i32) -> Option<&'static str> {
    REQUEST_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

macro_rules! response_codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr,)*) => {
        /// Response codes (the `code` of a response frame).
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ResponseCode {
            $($(#[$doc])* $name = $value,)*
        }

        impl ResponseCode {
            /// The response code with this number, if we know it.
            pub fn from_i32(code: i32) -> Option<Self> {
                match code {
                    $($value => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// RocketMQ's name for the code.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name),)*
                }
            }
        }
    };
}

response_codes! {
    SUCCESS = 0,
    SYSTEM_ERROR = 1,
    SYSTEM_BUSY = 2,
    REQUEST_CODE_NOT_SUPPORTED = 3,
    TRANSACTION_FAILED = 4,
    FLUSH_DISK_TIMEOUT = 10,
    SLAVE_NOT_AVAILABLE = 11,
    FLUSH_SLAVE_TIMEOUT = 12,
    MESSAGE_ILLEGAL = 13,
    SERVICE_NOT_AVAILABLE = 14,
    VERSION_NOT_SUPPORTED = 15,
    NO_PERMISSION = 16,
    TOPIC_NOT_EXIST = 17,
    TOPIC_EXIST_ALREADY = 18,
    PULL_NOT_FOUND = 19,
    PULL_RETRY_IMMEDIATELY = 20,
    PULL_OFFSET_MOVED = 21,
    QUERY_NOT_FOUND = 22,
    SUBSCRIPTION_PARSE_FAILED = 23,
    SUBSCRIPTION_NOT_EXIST = 24,
    SUBSCRIPTION_NOT_LATEST = 25,
    SUBSCRIPTION_GROUP_NOT_EXIST = 26,
    FILTER_DATA_NOT_EXIST = 27,
    FILTER_DATA_NOT_LATEST = 28,
    INVALID_PARAMETER = 29,
    TRANSACTION_SHOULD_COMMIT = 200,
    TRANSACTION_SHOULD_ROLLBACK = 201,
    TRANSACTION_STATE_UNKNOW = 202,
    TRANSACTION_STATE_GROUP_WRONG = 203,
    NO_BUYER_ID = 204,
    NOT_IN_CURRENT_UNIT = 205,
    CONSUMER_NOT_ONLINE = 206,
    CONSUME_MSG_TIMEOUT = 207,
    NO_MESSAGE = 208,
}

impl From<ResponseCode> for i32 {
    fn from(code: ResponseCode) -> i32 {
        code as i32
    }
}

/// The client language of a frame. JSON headers carry the name, ROCKETMQ
/// binary headers the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LanguageCode {
    Java,
    Cpp,
    Dotnet,
    Python,
    Delphi,
    Erlang,
    Ruby,
    Other,
    Http,
    Go,
    Php,
    Oms,
    Rust,
    NodeJs,
}

const LANGUAGES: &[(LanguageCode, u8, &str)] = &[
    (LanguageCode::Java, 0, "JAVA"),
    (LanguageCode::Cpp, 1, "CPP"),
    (LanguageCode::Dotnet, 2, "DOTNET"),
    (LanguageCode::Python, 3, "PYTHON"),
    (LanguageCode::Delphi, 4, "DELPHI"),
    (LanguageCode::Erlang, 5, "ERLANG"),
    (LanguageCode::Ruby, 6, "RUBY"),
    (LanguageCode::Other, 7, "OTHER"),
    (LanguageCode::Http, 8, "HTTP"),
    (LanguageCode::Go, 9, "GO"),
    (LanguageCode::Php, 10, "PHP"),
    (LanguageCode::Oms, 11, "OMS"),
    (LanguageCode::Rust, 12, "RUST"),
    (LanguageCode::NodeJs, 13, "NODE_JS"),
];

impl LanguageCode {
    /// What our servers and clients put in the frames they write. RocketMQ 4.x
    /// Java clients predate `RUST` in their language table and would read it as
    /// null, so we introduce ourselves as `JAVA`, as other compatible
    /// implementations do; nothing on the wire depends on the value.
    pub const OURS: LanguageCode = LanguageCode::Java;

    pub fn code(self) -> u8 {
        LANGUAGES
            .iter()
            .find(|(l, _, _)| *l == self)
            .map_or(7, |e| e.1)
    }

    pub fn name(self) -> &'static str {
        LANGUAGES
            .iter()
            .find(|(l, _, _)| *l == self)
            .map_or("OTHER", |e| e.2)
    }

    /// Any unknown number reads as `OTHER`: the language is informational.
    pub fn from_code(code: u8) -> Self {
        LANGUAGES
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(LanguageCode::Other, |e| e.0)
    }

    /// Any unknown name reads as `OTHER`.
    pub fn from_name(name: &str) -> Self {
        LANGUAGES
            .iter()
            .find(|(_, _, n)| *n == name)
            .map_or(LanguageCode::Other, |e| e.0)
    }
}

/// The `version` we write in frames: RocketMQ's ordinal for V4_9_4, the 4.x
/// release whose protocol we implement.
pub const OUR_VERSION: i32 = 401;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_rocketmq() {
        use request_code::*;
        let pinned = [
            (SEND_MESSAGE, 10),
            (PULL_MESSAGE, 11),
            (HEART_BEAT, 34),
            (END_TRANSACTION, 37),
            (CHECK_TRANSACTION_STATE, 39),
            (LOCK_BATCH_MQ, 41),
            (GET_ALL_DELAY_OFFSET, 45),
            (GET_TIMER_CHECK_POINT, 60),
            (REGISTER_BROKER, 103),
            (GET_ROUTEINFO_BY_TOPIC, 105),
            (GET_BROKER_CLUSTER_INFO, 106),
            (GET_CONSUMER_RUNNING_INFO, 307),
            (SEND_MESSAGE_V2, 310),
            (SEND_BATCH_MESSAGE, 320),
            (QUERY_DATA_VERSION, 322),
        ];
        for (ours, theirs) in pinned {
            assert_eq!(ours, theirs);
        }
        assert_eq!(request_code_name(310), Some("SEND_MESSAGE_V2"));
        assert_eq!(request_code_name(99_999), None);
    }

    #[test]
    fn request_code_table_has_no_duplicates() {
        for (i, (code, name)) in REQUEST_CODES.iter().enumerate() {
            for (other, other_name) in &REQUEST_CODES[i + 1..] {
                assert_ne!(code, other, "{name} and {other_name} share a code");
            }
        }
    }

    #[test]
    fn response_codes_match_rocketmq() {
        assert_eq!(ResponseCode::REQUEST_CODE_NOT_SUPPORTED as i32, 3);
        assert_eq!(ResponseCode::SLAVE_NOT_AVAILABLE as i32, 11);
        assert_eq!(ResponseCode::PULL_NOT_FOUND as i32, 19);
        assert_eq!(ResponseCode::PULL_OFFSET_MOVED as i32, 21);
        assert_eq!(ResponseCode::TRANSACTION_STATE_UNKNOW as i32, 202);
        assert_eq!(ResponseCode::NO_MESSAGE as i32, 208);
        assert_eq!(
            ResponseCode::from_i32(17),
            Some(ResponseCode::TOPIC_NOT_EXIST)
        );
        assert_eq!(ResponseCode::from_i32(-5), None);
        assert_eq!(ResponseCode::SYSTEM_BUSY.name(), "SYSTEM_BUSY");
    }

    #[test]
    fn language_codes_round_trip_and_default_to_other() {
        for &(lang, code, name) in LANGUAGES {
            assert_eq!(LanguageCode::from_code(code), lang);
            assert_eq!(LanguageCode::from_name(name), lang);
            assert_eq!(lang.code(), code);
            assert_eq!(lang.name(), name);
        }
        assert_eq!(LanguageCode::from_code(200), LanguageCode::Other);
        assert_eq!(LanguageCode::from_name("COBOL"), LanguageCode::Other);
    }
}
