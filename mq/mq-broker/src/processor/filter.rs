//! Property filters: SQL92 subscriptions, served when `enablePropertyFilter`
//! is on (RocketMQ's default is off). The checks PULL_MESSAGE, HEART_BEAT
//! and CHECK_CLIENT_CONFIG make of a subscription, compiled selectors kept
//! for the next pull, and the filter a pull runs on each stored message
//! (over its properties, read in place).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use mq_protocol::body::SubscriptionData;
use mq_protocol::filter::{
    EncodedProperties, ExpressionType, FilterError, Selector, PROPERTY_FILTER_DISABLED,
};
use mq_protocol::message::record_properties;
use mq_protocol::ResponseCode;

use super::error::ProcessError;

/// Compiled expressions kept (RocketMQ's parser caches 100): a consumer
/// group pulls with the same expression again and again.
const CACHE_CAPACITY: usize = 128;

type Compiled = Result<Arc<Selector>, FilterError>;

/// Expressions compiled lately, and what came of them.
fn cache() -> &'static Mutex<HashMap<String, Compiled>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Compiled>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// `expression` compiled, from the cache when it was compiled lately (a
/// refusal is cached too, as RocketMQ's parser does).
fn compile(expression: &str) -> Compiled {
    let cache = cache();
    if let Some(hit) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(expression)
    {
        return hit.clone();
    }
    let compiled = Selector::parse(expression).map(Arc::new);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHE_CAPACITY {
        cache.clear();
    }
    cache.insert(expression.to_owned(), compiled.clone());
    compiled
}

/// RocketMQ's refusal of a filtered subscription while
/// `enablePropertyFilter` is off.
fn not_enabled(expression_type: &str) -> ProcessError {
    ProcessError::system(format!("{PROPERTY_FILTER_DISABLED} {expression_type}"))
}

/// Whether the broker serves `sub` (CHECK_CLIENT_CONFIG, and heartbeats
/// before they register anything): a TAG subscription always; any other
/// only with the property filter `enabled` (else SYSTEM_ERROR, RocketMQ's
/// remark), and only if it compiles (else SUBSCRIPTION_PARSE_FAILED with
/// what is wrong).
pub(crate) fn check_subscription(
    enabled: bool,
    sub: &SubscriptionData,
) -> Result<(), ProcessError> {
    if sub.is_tag_type() {
        return Ok(());
    }
    if !enabled {
        return Err(not_enabled(&sub.expression_type));
    }
    let parse_failed = |e: String| ProcessError::new(ResponseCode::SUBSCRIPTION_PARSE_FAILED, e);
    sub.expression_type().map_err(parse_failed)?;
    compile(&sub.sub_string).map_err(|e| parse_failed(e.to_string()))?;
    Ok(())
}

/// The selector a pull of `sub` filters by, `None` for a TAG subscription.
/// In RocketMQ's order: the expression compiles first (else
/// SUBSCRIPTION_PARSE_FAILED for one the pull carries, FILTER_DATA_NOT_EXIST
/// for the one a heartbeat `registered`), then the property filter must be
/// `enabled` (else SYSTEM_ERROR).
pub(crate) fn pull_selector(
    enabled: bool,
    sub: &SubscriptionData,
    registered: bool,
) -> Result<Option<Arc<Selector>>, ProcessError> {
    if sub.is_tag_type() {
        return Ok(None);
    }
    let refuse = |reason: String| {
        if registered {
            ProcessError::new(
                ResponseCode::FILTER_DATA_NOT_EXIST,
                format!(
                    "The broker's consumer filter data is not exist!Your expression may be wrong! {reason}"
                ),
            )
        } else {
            ProcessError::new(
                ResponseCode::SUBSCRIPTION_PARSE_FAILED,
                format!("parse the consumer's subscription failed: {reason}"),
            )
        }
    };
    if let Err(e) = sub.expression_type() {
        return Err(refuse(e));
    }
    let selector = compile(&sub.sub_string).map_err(|e| refuse(e.to_string()))?;
    if !enabled {
        return Err(not_enabled(ExpressionType::SQL92));
    }
    Ok(Some(selector))
}

/// Whether the stored message `record` passes `selector`: its properties
/// are read where they are stored; a record they cannot be found in does
/// not pass.
pub(crate) fn matches_record(selector: &Selector, record: &[u8]) -> bool {
    record_properties(record).is_ok_and(|p| selector.matches(&EncodedProperties(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(expression: &str) -> SubscriptionData {
        SubscriptionData::build("T", expression, Some("SQL92"), 1).unwrap()
    }

    #[test]
    fn tag_subscriptions_need_nothing() {
        let tags = SubscriptionData::parse("T", "A || B", 1);
        assert_eq!(check_subscription(false, &tags), Ok(()));
        assert_eq!(pull_selector(false, &tags, true), Ok(None));
    }

    #[test]
    fn sql_needs_the_property_filter() {
        let e = check_subscription(false, &sql("a > 1")).unwrap_err();
        assert_eq!(e.code, ResponseCode::SYSTEM_ERROR);
        assert_eq!(
            e.remark,
            "The broker does not support consumer to filter message by SQL92"
        );
        let e = pull_selector(false, &sql("a > 1"), false).unwrap_err();
        assert_eq!(e.code, ResponseCode::SYSTEM_ERROR);
        assert!(check_subscription(true, &sql("a > 1")).is_ok());
        let selector = pull_selector(true, &sql("a > 1"), false).unwrap().unwrap();
        assert!(selector.matches(&std::collections::BTreeMap::from([(
            "a".to_owned(),
            "2".to_owned()
        )])));
    }

    #[test]
    fn a_syntax_error_is_refused_with_the_reason() {
        let e = check_subscription(true, &sql("a >")).unwrap_err();
        assert_eq!(e.code, ResponseCode::SUBSCRIPTION_PARSE_FAILED);
        assert!(e.remark.contains("invalid SQL92 filter"), "{}", e.remark);
        // A pull compiles before it looks at the switch, as RocketMQ.
        let e = pull_selector(false, &sql("a >"), false).unwrap_err();
        assert_eq!(e.code, ResponseCode::SUBSCRIPTION_PARSE_FAILED);
        assert!(e
            .remark
            .starts_with("parse the consumer's subscription failed"));
        let e = pull_selector(true, &sql("a >"), true).unwrap_err();
        assert_eq!(e.code, ResponseCode::FILTER_DATA_NOT_EXIST);
        // Twice: the cached refusal.
        assert_eq!(pull_selector(true, &sql("a >"), true).unwrap_err(), e);
    }

    #[test]
    fn an_unknown_type_is_refused() {
        let mut sub = sql("a > 1");
        sub.expression_type = "GROOVY".into();
        let e = check_subscription(false, &sub).unwrap_err();
        assert_eq!(
            e.remark,
            "The broker does not support consumer to filter message by GROOVY"
        );
        let e = check_subscription(true, &sub).unwrap_err();
        assert_eq!(e.code, ResponseCode::SUBSCRIPTION_PARSE_FAILED);
        assert!(pull_selector(true, &sub, false).is_err());
    }

    #[test]
    fn the_cache_stays_bounded() {
        for i in 0..(CACHE_CAPACITY * 3) {
            assert!(compile(&format!("a = {i}")).is_ok());
        }
        let len = cache().lock().unwrap().len();
        assert!(len <= CACHE_CAPACITY, "{len} entries");
        assert_eq!(compile("a = 1"), compile("a = 1"));
    }
}
