//! The SQL92 filter end to end: text in, match or not out. Expected
//! values follow RocketMQ's `SelectorParser` and expression classes (its
//! `filter` module's tests check the same cases).

use std::collections::BTreeMap;

use super::*;

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The value of `sql` for a message with `pairs` (the filter must parse).
fn eval(sql: &str, pairs: &[(&str, &str)]) -> Result<Option<bool>, EvalError> {
    Selector::parse(sql)
        .unwrap_or_else(|e| panic!("{sql:?} should parse: {e}"))
        .evaluate(&props(pairs))
}

fn matches(sql: &str, pairs: &[(&str, &str)]) -> bool {
    Selector::parse(sql)
        .unwrap_or_else(|e| panic!("{sql:?} should parse: {e}"))
        .matches(&props(pairs))
}

fn refused(sql: &str) -> FilterError {
    match Selector::parse(sql) {
        Ok(s) => panic!("{sql:?} should not parse, got {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_example_of_the_task_matches_exactly() {
    let sql = "a > 5 AND region IN ('eu','us')";
    assert!(matches(sql, &[("a", "6"), ("region", "eu")]));
    assert!(matches(sql, &[("a", "100"), ("region", "us")]));
    assert!(!matches(sql, &[("a", "5"), ("region", "eu")]));
    assert!(!matches(sql, &[("a", "6"), ("region", "asia")]));
    assert!(!matches(sql, &[("region", "eu")]), "a is missing");
    assert!(!matches(sql, &[("a", "6")]), "region is missing");
    assert!(
        !matches(sql, &[("a", "x"), ("region", "eu")]),
        "a is no number"
    );
}

#[test]
fn equality_of_strings_numbers_and_booleans() {
    assert!(matches("a = 'x'", &[("a", "x")]));
    assert!(
        !matches("a = 'x'", &[("a", "X")]),
        "values are case-sensitive"
    );
    assert!(matches("'x' = a", &[("a", "x")]));
    assert!(matches("a = 5", &[("a", "5")]));
    assert!(matches("a = +5", &[("a", "+5")]));
    assert!(matches("a = -5", &[("a", "-5")]));
    assert!(matches("a = 5.0", &[("a", "5")]), "read as a double");
    assert!(matches("a = 3000000000", &[("a", "3000000000")]));
    assert!(matches("a = TRUE", &[("a", "true")]));
    assert!(matches("a = TRUE", &[("a", "True")]));
    assert!(
        matches("a = FALSE", &[("a", "no")]),
        "anything but true is false"
    );
    assert!(matches("a <> 'x'", &[("a", "y")]));
    assert!(!matches("a <> 'x'", &[("a", "x")]));
    assert!(matches("TRUE = TRUE", &[]));
    assert!(matches("5 = 5.0", &[]));
    assert!(!matches("5 = TRUE", &[]));
    // `a = 5` reads a as an Integer: "5.0" is not one, an evaluation error.
    assert!(eval("a = 5", &[("a", "5.0")]).is_err());
    assert!(!matches("a = 5", &[("a", "5.0")]));
    assert!(!matches("a = 5", &[("a", "abc")]));
    assert!(matches("a = b", &[("a", "x"), ("b", "x")]));
}

#[test]
fn a_missing_property_is_unknown_not_false() {
    assert_eq!(eval("a = 'x'", &[]), Ok(None));
    assert_eq!(eval("a <> 'x'", &[]), Ok(None));
    assert_eq!(eval("NOT (a = 'x')", &[]), Ok(None));
    assert_eq!(eval("'x' = a", &[]), Ok(Some(false)));
    assert_eq!(eval("a > 1", &[]), Ok(None));
    assert_eq!(eval("a IN ('x')", &[]), Ok(None));
    assert_eq!(eval("a NOT IN ('x')", &[]), Ok(None));
    assert_eq!(eval("a BETWEEN 1 AND 2", &[]), Ok(None));
    assert_eq!(
        eval("a = b", &[]),
        Ok(Some(true)),
        "NULL = NULL in RocketMQ"
    );
    // Unknown AND false is false; unknown OR true is true.
    assert_eq!(eval("a = 'x' AND b = 'y'", &[("b", "z")]), Ok(Some(false)));
    assert_eq!(eval("a = 'x' AND b = 'y'", &[("b", "y")]), Ok(None));
    assert_eq!(eval("a = 'x' OR b = 'y'", &[("b", "y")]), Ok(Some(true)));
    assert_eq!(eval("a = 'x' OR b = 'y'", &[("b", "z")]), Ok(None));
    assert!(!matches("a <> 'x'", &[]));
    assert!(matches("a IS NULL OR a <> 'x'", &[]));
}

#[test]
fn is_null_and_is_not_null() {
    assert!(matches("a IS NULL", &[]));
    assert!(!matches("a IS NULL", &[("a", "")]));
    assert!(matches("a IS NOT NULL", &[("a", "")]));
    assert!(!matches("a IS NOT NULL", &[]));
    assert!(matches("a is not null and b IS null", &[("a", "1")]));
    assert!(matches("NULL IS NULL", &[]));
    assert!(!matches("5 IS NULL", &[]));
}

#[test]
fn ordering_comparisons() {
    let cases = [
        ("a > 5", "6", true),
        ("a > 5", "5", false),
        ("a >= 5", "5", true),
        ("a < 5", "4", true),
        ("a < 5", "-10", true),
        ("a <= 5", "5", true),
        ("a <= 5", "6", false),
        ("a > 5.5", "5.6", true),
        ("a > 5.5", "5", false),
        ("a > 5.5", " 6 ", true),
        ("a > -1", "0", true),
        ("a > - -1", "0", false),
        ("a < 1e3", "999", true),
        ("a > 5L", "6", true),
    ];
    for (sql, a, want) in cases {
        assert_eq!(matches(sql, &[("a", a)]), want, "{sql} with a={a:?}");
    }
    // `> 5` reads a as an Integer, `> 5.5` as a Double.
    assert!(eval("a > 5", &[("a", "5.5")]).is_err());
    assert!(matches("a > 5.0", &[("a", "5.5")]));
    assert!(eval("a > 5", &[("a", "3000000000")]).is_err());
    assert!(matches("a > 2147483648", &[("a", "3000000000")]));
    // Two properties are both read as doubles.
    assert!(matches("a > b", &[("a", "10"), ("b", "9.5")]));
    assert!(eval("a > b", &[("a", "x"), ("b", "1")]).is_err());
    assert_eq!(eval("a > b", &[("a", "1")]), Ok(None));
    // Between literals.
    assert!(matches("2 > 1", &[]));
    assert!(matches("2 > 1.5", &[]));
    assert!(matches("3000000000 > 2", &[]));
}

#[test]
fn between_and_not_between() {
    for (a, inside) in [
        ("1", true),
        ("5", true),
        ("3", true),
        ("0", false),
        ("6", false),
    ] {
        assert_eq!(matches("a BETWEEN 1 AND 5", &[("a", a)]), inside, "{a}");
        assert_eq!(
            matches("a NOT BETWEEN 1 AND 5", &[("a", a)]),
            !inside,
            "{a}"
        );
    }
    assert!(matches("a between 1.5 and 2.5", &[("a", "2")]));
    assert!(matches(
        "a BETWEEN -5 AND 5 AND b = 'x'",
        &[("a", "-5"), ("b", "x")]
    ));
    assert!(matches(
        "a BETWEEN b AND c",
        &[("a", "2"), ("b", "1"), ("c", "3")]
    ));
    assert!(matches("a BETWEEN 1 AND 1", &[("a", "1")]));
}

#[test]
fn in_and_not_in() {
    assert!(matches("a IN ('x')", &[("a", "x")]));
    assert!(matches(
        "a IN ('x', 'y', 'z', 'u', 'v', 'w')",
        &[("a", "w")]
    ));
    assert!(!matches("a IN ('x', 'y')", &[("a", "z")]));
    assert!(matches("a NOT IN ('x', 'y')", &[("a", "z")]));
    assert!(!matches("a NOT IN ('x', 'y')", &[("a", "x")]));
    assert!(matches("(a) IN ('x')", &[("a", "x")]));
    assert!(matches("a in ('it''s')", &[("a", "it's")]));
    assert!(
        !matches("a IN ('1')", &[("a", "01")]),
        "strings, not numbers"
    );
}

#[test]
fn string_functions() {
    let sql = |op: &str| format!("a {op} 'ab'");
    let cases = [
        ("CONTAINS", "xaby", true),
        ("CONTAINS", "xy", false),
        ("NOT CONTAINS", "xy", true),
        ("NOT CONTAINS", "xaby", false),
        ("STARTSWITH", "abc", true),
        ("STARTSWITH", "cab", false),
        ("NOT STARTSWITH", "cab", true),
        ("ENDSWITH", "cab", true),
        ("ENDSWITH", "abc", false),
        ("NOT ENDSWITH", "abc", true),
        ("contains", "ab", true),
    ];
    for (op, a, want) in cases {
        assert_eq!(matches(&sql(op), &[("a", a)]), want, "{op} with {a}");
    }
    // A missing property or an empty search is false, not unknown, for
    // the NOT forms too.
    assert_eq!(eval("a CONTAINS 'x'", &[]), Ok(Some(false)));
    assert_eq!(eval("a NOT CONTAINS 'x'", &[]), Ok(Some(false)));
    assert_eq!(eval("a CONTAINS ''", &[("a", "x")]), Ok(Some(false)));
    assert_eq!(eval("a NOT CONTAINS ''", &[("a", "x")]), Ok(Some(false)));
    assert!(matches(
        "TAGS STARTSWITH 'order' AND TAGS ENDSWITH 'ed'",
        &[("TAGS", "order-paid-ed")]
    ));
    assert!(!matches("5 CONTAINS '5'", &[]), "only strings contain");
}

#[test]
fn and_or_not_and_their_precedence() {
    let p = [("a", "1"), ("b", "2")];
    assert!(matches("a = 1 AND b = 2", &p));
    assert!(!matches("a = 1 AND b = 3", &p));
    assert!(matches("a = 9 OR b = 2", &p));
    assert!(matches("a = 9 AND b = 9 OR b = 2", &p), "AND binds tighter");
    assert!(!matches("a = 9 AND (b = 9 OR b = 2)", &p));
    assert!(matches("NOT (a = 9)", &p));
    assert!(matches("NOT NOT (a = 1)", &p));
    assert!(matches("NOT (a = 1 AND b = 9)", &p));
    // NOT binds tighter than `=`: `(NOT a) = 1` is a boolean against a
    // number, never equal, as in RocketMQ.
    assert!(!matches("NOT a = 1", &p));
    assert!(!matches("NOT a = 9", &p));
    assert!(matches("TRUE", &[]));
    assert!(!matches("FALSE", &[]));
    assert_eq!(eval("NULL", &[]), Ok(None));
    assert!(matches("TRUE OR a > 1", &[]));
    // A property as a condition: its string is never TRUE.
    assert_eq!(eval("a", &[("a", "true")]), Ok(Some(false)));
    assert_eq!(eval("a", &[]), Ok(None));
    assert_eq!(eval("NOT a", &[("a", "x")]), Ok(Some(true)));
    assert!(matches(
        "a = 1 AND (b = 2 OR c = 3) AND NOT (d IS NOT NULL)",
        &p
    ));
}

#[test]
fn evaluation_stops_where_rocketmq_stops() {
    // The right side is not evaluated once the left decides, so its error
    // does not happen.
    assert!(matches("a = 1 OR b > 5", &[("a", "1"), ("b", "x")]));
    assert!(!matches("a = 2 AND b > 5", &[("a", "1"), ("b", "x")]));
    assert_eq!(
        eval("a = 2 AND b > 5", &[("a", "1"), ("b", "x")]),
        Ok(Some(false))
    );
    // Otherwise the error fails the whole filter, even an OR that would
    // be true further on.
    assert!(eval("b > 5 OR a = 1", &[("a", "1"), ("b", "x")]).is_err());
    assert!(!matches("b > 5 OR a = 1", &[("a", "1"), ("b", "x")]));
    // A comparison whose left side is unknown does not read its right.
    assert_eq!(eval("a > b", &[("b", "x")]), Ok(None));
}

#[test]
fn keywords_ignore_case_properties_do_not() {
    assert!(matches(
        "a between 1 and 2 and b is not null or FALSE",
        &[("a", "1"), ("b", "")]
    ));
    assert!(matches("A = 'x'", &[("A", "x")]));
    assert!(!matches("A = 'x'", &[("a", "x")]));
    assert!(matches("True", &[]));
    assert!(matches("$a_1 = 'x'", &[("$a_1", "x")]));
    assert!(
        matches("nothing = 'x'", &[("nothing", "x")]),
        "a keyword prefix"
    );
}

#[test]
fn system_properties_are_properties() {
    let p = [("TAGS", "TagA"), ("KEYS", "k1 k2"), ("UNIQ_KEY", "ABC")];
    assert!(matches("TAGS = 'TagA'", &p));
    assert!(matches(
        "TAGS IN ('TagA', 'TagB') AND KEYS CONTAINS 'k2'",
        &p
    ));
    assert!(matches("UNIQ_KEY IS NOT NULL", &p));
}

#[test]
fn comments_and_layout() {
    assert!(matches(
        "a = 1 -- the first\n AND /* and */ b = 2",
        &[("a", "1"), ("b", "2")]
    ));
    assert!(matches("\t(a=1)\r\n", &[("a", "1")]));
    assert!(matches("a=1 -- to the end", &[("a", "1")]));
}

#[test]
fn what_rocketmq_refuses_is_refused() {
    for sql in [
        "",
        "   ",
        "a",        // fine, a boolean cast: checked below
        "5",        // not a condition
        "'x'",      // not a condition
        "-a",       // not a condition
        "a = NULL", // NULL cannot be compared
        "NULL = a",
        "TRUE = 5", // a boolean literal against another literal
        "a > 'x'",  // ordering needs numbers
        "'x' < a",
        "a > TRUE",
        "a > (b = 1)",
        "a > 1 > 2",
        "a BETWEEN 5 AND 1",
        "a BETWEEN NULL AND 1",
        "a BETWEEN 'x' AND 'y'",
        "5 IN ('x')", // IN needs a property
        "a IN ()",
        "a IN (1, 2)", // only strings in the list
        "a IN ('x',)",
        "a IN 'x'",
        "a CONTAINS b",
        "a CONTAINS 5",
        "a = 1 AND",
        "AND a = 1",
        "a = 1 OR 5",
        "NOT 5",
        "NOT a > 1", // (NOT a) > 1
        "a IS 5",
        "a IS NOT 5",
        "(a = 1",
        "a = 1)",
        "a = 1 b = 2",
        "a == 1",
        "a != 1",
        "a = \"x\"",
        "a = 'open",
        "a = 1 /* open",
        "a = 99999999999999999999",
        "a > 1e999",
        "a # 1",
        "a = 1;",
        "a NOT b",
        "a IS NULL NULL",
    ] {
        if sql == "a" {
            assert!(Selector::parse(sql).is_ok());
            continue;
        }
        let e = refused(sql);
        assert!(
            e.position >= 1 && e.position <= sql.chars().count() + 1,
            "{sql:?}: {e}"
        );
    }
}

#[test]
fn errors_say_where_and_what() {
    let e = refused("a = 1 AND b > 'x'");
    assert_eq!(e.position, 15);
    assert!(e.reason.contains("'x'"), "{e}");
    assert!(
        e.to_string()
            .starts_with("invalid SQL92 filter at character 15"),
        "{e}"
    );
    let e = refused("a = 1 b");
    assert_eq!(e.position, 7);
    assert!(e.reason.contains("identifier b"), "{e}");
    let e = refused("a = ");
    assert!(e.reason.contains("end of the expression"), "{e}");
    let e = refused("a BETWEEN 5 AND 1");
    assert!(e.reason.contains("above"), "{e}");
}

#[test]
fn zero_is_a_decimal_literal_here() {
    // RocketMQ's range check refuses 0.0 (it compares with
    // Double.MIN_VALUE, the smallest positive double); we accept it.
    assert!(matches("a > 0.0", &[("a", "0.1")]));
    assert!(matches("a = 0", &[("a", "0")]));
}

#[test]
fn input_is_bounded() {
    let long = format!("a = '{}'", "x".repeat(MAX_EXPRESSION_LEN));
    assert!(refused(&long).reason.contains("bytes long"));
    let fits = format!("a = '{}'", "x".repeat(MAX_EXPRESSION_LEN - 10));
    assert!(matches(
        &fits,
        &[("a", &"x".repeat(MAX_EXPRESSION_LEN - 10))]
    ));

    let nested = |n: usize| format!("{}a = 1{}", "(".repeat(n), ")".repeat(n));
    assert!(matches(&nested(MAX_DEPTH - 2), &[("a", "1")]));
    assert!(refused(&nested(MAX_DEPTH + 1)).reason.contains("nests"));
    assert!(refused(&nested(5000)).reason.contains("nests"));
    assert!(refused(&format!("{}(a = 1)", "NOT ".repeat(MAX_DEPTH + 1)))
        .reason
        .contains("nests"));
    // (`--` would start a comment.)
    assert!(refused(&format!("a > {}1", "- ".repeat(MAX_DEPTH + 1)))
        .reason
        .contains("nests"));
    // Chained comparisons deepen the tree without recursion in the parser.
    let chain = format!("a{}", " IS NULL".repeat(MAX_DEPTH + 1));
    assert!(refused(&chain).reason.contains("nests"));
    // A long AND chain is wide, not deep.
    let wide = vec!["a = 1"; 1000].join(" AND ");
    assert!(wide.len() < MAX_EXPRESSION_LEN);
    assert!(matches(&wide, &[("a", "1")]));
    let ors = vec!["a = 2"; 1000].join(" OR ") + " OR a = 1";
    assert!(matches(&ors, &[("a", "1")]));
}

#[test]
fn encoded_properties_are_read_in_place() {
    let stored = "TAGS\u{1}TagA\u{2}a\u{1}7\u{2}region\u{1}eu\u{2}";
    let selector = Selector::parse("a > 5 AND region IN ('eu','us') AND TAGS = 'TagA'").unwrap();
    assert!(selector.matches(&EncodedProperties(stored)));
    assert!(!selector.matches(&EncodedProperties("a\u{1}7\u{2}")));
    assert!(!selector.matches(&EncodedProperties("")));
    // The last of a repeated name wins, as in a decoded map.
    let twice = EncodedProperties("a\u{1}1\u{2}a\u{1}9\u{2}");
    assert_eq!(twice.property("a"), Some("9"));
    // A piece without a separator is skipped.
    let odd = EncodedProperties("junk\u{2}a\u{1}1\u{2}");
    assert_eq!(odd.property("a"), Some("1"));
    assert_eq!(odd.property("junk"), None);
    // An empty value is a value.
    assert_eq!(EncodedProperties("a\u{1}\u{2}").property("a"), Some(""));
}

#[test]
fn expression_types_as_rocketmq_names_them() {
    assert_eq!(ExpressionType::parse(None), Ok(ExpressionType::Tag));
    assert_eq!(ExpressionType::parse(Some("")), Ok(ExpressionType::Tag));
    assert_eq!(ExpressionType::parse(Some("TAG")), Ok(ExpressionType::Tag));
    assert_eq!(
        ExpressionType::parse(Some("SQL92")),
        Ok(ExpressionType::Sql92)
    );
    assert!(ExpressionType::parse(Some("sql92")).is_err());
    assert!(ExpressionType::parse(Some("GROOVY")).is_err());
    assert_eq!(ExpressionType::Sql92.to_string(), "SQL92");
}
