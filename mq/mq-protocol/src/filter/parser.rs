//! A recursive-descent parser for the grammar of RocketMQ's
//! `SelectorParser.jj`, with the checks its expression factories make
//! (`ComparisonExpression.create*`, `asBooleanExpression`):
//!
//! ```text
//! filter     := or EOF                        (must be a condition)
//! or         := and ( OR and )*
//! and        := equality ( AND equality )*
//! equality   := comparison ( '=' comparison | '<>' comparison
//!                          | IS NULL | IS NOT NULL )*
//! comparison := unary ( ('>' | '>=' | '<' | '<=') unary
//!                     | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string
//!                     | [NOT] BETWEEN unary AND unary
//!                     | [NOT] IN '(' string ( ',' string )* ')' )*
//! unary      := '+' unary | '-' unary | NOT unary | primary
//! primary    := literal | identifier | '(' or ')'
//! ```
//!
//! `AND` and `OR` chains become one node each (evaluated left to right,
//! which is what RocketMQ's left-nested pairs amount to), so a long chain
//! does not make a deep tree; every node records its depth and none may be
//! deeper than [`MAX_DEPTH`].

use std::cmp::Ordering;

use super::eval::{compare, Value};
use super::lexer::{tokenize, Keyword, Tok, Token};
use super::{FilterError, MAX_DEPTH};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    /// A string or number literal (RocketMQ's `ConstantExpression`).
    Literal(Literal),
    /// `TRUE`, `FALSE` or `NULL` (RocketMQ's `BooleanConstantExpression`).
    Bool(Option<bool>),
    Property(String),
    /// Unary minus.
    Negate(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A property used as a condition: TRUE only if its value is a
    /// boolean, which a property's string never is.
    BoolCast(Box<Expr>),
    /// `=`; `IS NULL` is an `Equal` with `Bool(None)`.
    Equal(Box<Expr>, Box<Expr>),
    Compare(Relation, Box<Expr>, Box<Expr>),
    In {
        property: String,
        values: Vec<String>,
        negated: bool,
    },
    Text {
        op: TextOp,
        negated: bool,
        operand: Box<Expr>,
        search: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Str(String),
    /// A decimal literal within `i32` (Java's `Integer`).
    Int(i32),
    /// A decimal literal beyond `i32` (Java's `Long`).
    Long(i64),
    Double(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Relation {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Relation {
    /// Whether `ordering` of left to right satisfies the relation.
    pub(super) fn holds(self, ordering: Ordering) -> bool {
        match self {
            Relation::Gt => ordering == Ordering::Greater,
            Relation::Ge => ordering != Ordering::Less,
            Relation::Lt => ordering == Ordering::Less,
            Relation::Le => ordering != Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

impl Expr {
    /// RocketMQ's `BooleanExpression`: what may stand as a condition.
    fn is_condition(&self) -> bool {
        !matches!(self, Expr::Literal(_) | Expr::Property(_) | Expr::Negate(_))
    }

    /// A literal's value (RocketMQ's `ConstantExpression`).
    fn constant(&self) -> Option<Value<'_>> {
        match self {
            Expr::Literal(l) => Some(Value::of_literal(l)),
            Expr::Bool(b) => Some(b.map_or(Value::Null, Value::Bool)),
            _ => None,
        }
    }

    /// How the expression reads in an error message.
    fn kind(&self) -> String {
        match self {
            Expr::Literal(Literal::Str(s)) => format!("the string '{}'", s.replace('\'', "''")),
            Expr::Literal(Literal::Int(i)) => format!("the number {i}"),
            Expr::Literal(Literal::Long(l)) => format!("the number {l}"),
            Expr::Literal(Literal::Double(d)) => format!("the number {d}"),
            Expr::Bool(Some(true)) => "TRUE".into(),
            Expr::Bool(Some(false)) => "FALSE".into(),
            Expr::Bool(None) => "NULL".into(),
            Expr::Property(name) => format!("the property {name}"),
            Expr::Negate(_) => "a negated value".into(),
            _ => "a condition".into(),
        }
    }
}

/// An expression, where it starts and how deep its tree is.
struct Node {
    expr: Expr,
    at: usize,
    depth: usize,
}

/// Parses a whole filter.
pub(super) fn parse(text: &str) -> Result<Expr, FilterError> {
    let mut parser = Parser {
        text,
        tokens: tokenize(text)?,
        pos: 0,
        nesting: 0,
    };
    let root = parser.or()?;
    let next = parser.peek();
    if next.tok != Tok::Eof {
        return Err(parser.error(
            next.at,
            format!(
                "unexpected {} after a complete expression",
                next.tok.describe()
            ),
        ));
    }
    Ok(parser.condition(root)?.expr)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
    /// Parentheses, signs and NOTs being parsed (the recursion depth).
    nesting: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, at: usize, reason: impl Into<String>) -> FilterError {
        FilterError::new(self.text, at, reason)
    }

    fn peek(&self) -> &Token<'a> {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_second(&self) -> &Tok<'a> {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)].tok
    }

    fn next(&mut self) -> Token<'a> {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
        }
        token
    }

    fn is_keyword(&self, keyword: Keyword) -> bool {
        self.peek().tok == Tok::Keyword(keyword)
    }

    fn expect(&mut self, want: Tok<'static>, context: &str) -> Result<(), FilterError> {
        let token = self.next();
        if token.tok == want {
            Ok(())
        } else {
            Err(self.error(
                token.at,
                format!(
                    "expected {} {context}, found {}",
                    want.describe(),
                    token.tok.describe()
                ),
            ))
        }
    }

    fn string(&mut self, after: &str) -> Result<String, FilterError> {
        let token = self.next();
        match token.tok {
            Tok::Str(s) => Ok(s),
            other => Err(self.error(
                token.at,
                format!(
                    "expected a string in single quotes after {after}, found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// A node over children of `depth` at most, if it is not too deep.
    fn node(&self, expr: Expr, at: usize, children_depth: usize) -> Result<Node, FilterError> {
        let depth = children_depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.error(
                at,
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(Node { expr, at, depth })
    }

    /// Descends one level of recursion, if allowed.
    fn enter(&mut self, at: usize) -> Result<(), FilterError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(self.error(
                at,
                format!("the expression nests more than {MAX_DEPTH} levels deep"),
            ));
        }
        Ok(())
    }

    /// `node` as a condition (RocketMQ's `asBooleanExpression`): a
    /// property becomes a boolean cast; a literal or a negation is refused.
    fn condition(&self, node: Node) -> Result<Node, FilterError> {
        if node.expr.is_condition() {
            return Ok(node);
        }
        if matches!(node.expr, Expr::Property(_)) {
            return self.node(Expr::BoolCast(Box::new(node.expr)), node.at, node.depth);
        }
        Err(self.error(
            node.at,
            format!(
                "{} is not a condition (a comparison, TRUE or FALSE)",
                node.expr.kind()
            ),
        ))
    }

    /// `left AND right` or `left OR right`, chains merged into one node.
    fn logic(&self, and: bool, left: Node, right: Node) -> Result<Node, FilterError> {
        let at = left.at;
        let (mut items, left_depth) = Self::operands(and, self.condition(left)?);
        let (more, right_depth) = Self::operands(and, self.condition(right)?);
        items.extend(more);
        let expr = if and {
            Expr::And(items)
        } else {
            Expr::Or(items)
        };
        self.node(expr, at, left_depth.max(right_depth))
    }

    /// The operands a node brings to an AND (`and`) or OR chain, and their
    /// depth.
    fn operands(and: bool, node: Node) -> (Vec<Expr>, usize) {
        match node.expr {
            Expr::And(items) if and => (items, node.depth - 1),
            Expr::Or(items) if !and => (items, node.depth - 1),
            other => (vec![other], node.depth),
        }
    }

    fn not(&self, operand: Node, at: usize) -> Result<Node, FilterError> {
        let operand = self.condition(operand)?;
        self.node(Expr::Not(Box::new(operand.expr)), at, operand.depth)
    }

    /// `left = right` (RocketMQ's `createEqual`): neither side the NULL
    /// literal, and TRUE/FALSE on the left only against TRUE/FALSE.
    fn equal(&self, left: Node, right: Node) -> Result<Node, FilterError> {
        for side in [&left, &right] {
            if side.expr == Expr::Bool(None) {
                return Err(self.error(side.at, "NULL cannot be compared: use IS NULL"));
            }
        }
        if matches!(left.expr, Expr::Bool(_)) && matches!(right.expr, Expr::Literal(_)) {
            return Err(self.error(
                left.at,
                format!(
                    "{} cannot be compared with {}",
                    left.expr.kind(),
                    right.expr.kind()
                ),
            ));
        }
        self.equal_unchecked(left, right)
    }

    fn equal_unchecked(&self, left: Node, right: Node) -> Result<Node, FilterError> {
        let depth = left.depth.max(right.depth);
        self.node(
            Expr::Equal(Box::new(left.expr), Box::new(right.expr)),
            left.at,
            depth,
        )
    }

    fn is_null(&self, operand: Node) -> Result<Node, FilterError> {
        let at = operand.at;
        self.equal_unchecked(
            operand,
            Node {
                expr: Expr::Bool(None),
                at,
                depth: 1,
            },
        )
    }

    /// `left > right` and the like (RocketMQ's `checkLessThanOperand`):
    /// each side a number, a property or a negation.
    fn compare(&self, relation: Relation, left: Node, right: Node) -> Result<Node, FilterError> {
        for side in [&left, &right] {
            let comparable = match &side.expr {
                Expr::Literal(Literal::Str(_)) => false,
                Expr::Literal(_) => true,
                other => !other.is_condition(),
            };
            if !comparable {
                return Err(self.error(
                    side.at,
                    format!(
                        "{} cannot be compared with >, >=, < or <= (numbers and properties can)",
                        side.expr.kind()
                    ),
                ));
            }
        }
        let depth = left.depth.max(right.depth);
        self.node(
            Expr::Compare(relation, Box::new(left.expr), Box::new(right.expr)),
            left.at,
            depth,
        )
    }

    /// `value [NOT] BETWEEN low AND high`: `value >= low AND value <= high`,
    /// or `value < low OR value > high`. Literal bounds must not be NULL
    /// and must be in order (RocketMQ's `createBetween`).
    fn between(
        &self,
        value: Node,
        low: Node,
        high: Node,
        negated: bool,
    ) -> Result<Node, FilterError> {
        if let (Some(lo), Some(hi)) = (low.expr.constant(), high.expr.constant()) {
            if lo == Value::Null || hi == Value::Null {
                return Err(self.error(low.at, "the bounds of BETWEEN cannot be NULL"));
            }
            match compare(&hi, &lo) {
                Ok(Ordering::Less) => {
                    return Err(self.error(
                        low.at,
                        format!(
                            "the low bound of BETWEEN ({}) is above the high bound ({})",
                            low.expr.kind(),
                            high.expr.kind()
                        ),
                    ))
                }
                Ok(_) => {}
                Err(e) => return Err(self.error(low.at, format!("BETWEEN: {e}"))),
            }
        }
        let copy = Node {
            expr: value.expr.clone(),
            at: value.at,
            depth: value.depth,
        };
        if negated {
            let below = self.compare(Relation::Lt, value, low)?;
            let above = self.compare(Relation::Gt, copy, high)?;
            self.logic(false, below, above)
        } else {
            let from = self.compare(Relation::Ge, value, low)?;
            let to = self.compare(Relation::Le, copy, high)?;
            self.logic(true, from, to)
        }
    }

    // ----- the grammar -----

    fn or(&mut self) -> Result<Node, FilterError> {
        let mut left = self.and()?;
        while self.is_keyword(Keyword::Or) {
            self.next();
            let right = self.and()?;
            left = self.logic(false, left, right)?;
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut left = self.equality()?;
        while self.is_keyword(Keyword::And) {
            self.next();
            let right = self.equality()?;
            left = self.logic(true, left, right)?;
        }
        Ok(left)
    }

    fn equality(&mut self) -> Result<Node, FilterError> {
        let mut left = self.comparison()?;
        loop {
            let at = self.peek().at;
            match self.peek().tok {
                Tok::Eq => {
                    self.next();
                    let right = self.comparison()?;
                    left = self.equal(left, right)?;
                }
                Tok::Ne => {
                    self.next();
                    let right = self.comparison()?;
                    let equal = self.equal(left, right)?;
                    left = self.not(equal, at)?;
                }
                Tok::Keyword(Keyword::Is) => {
                    self.next();
                    if self.is_keyword(Keyword::Not) {
                        self.next();
                        self.expect(Tok::Keyword(Keyword::Null), "after IS NOT")?;
                        let null = self.is_null(left)?;
                        left = self.not(null, at)?;
                    } else {
                        self.expect(Tok::Keyword(Keyword::Null), "after IS")?;
                        left = self.is_null(left)?;
                    }
                }
                _ => return Ok(left),
            }
        }
    }

    fn comparison(&mut self) -> Result<Node, FilterError> {
        let mut left = self.unary()?;
        loop {
            let relation = match self.peek().tok {
                Tok::Gt => Some(Relation::Gt),
                Tok::Ge => Some(Relation::Ge),
                Tok::Lt => Some(Relation::Lt),
                Tok::Le => Some(Relation::Le),
                _ => None,
            };
            if let Some(relation) = relation {
                self.next();
                let right = self.unary()?;
                left = self.compare(relation, left, right)?;
                continue;
            }
            // NOT belongs here only before one of these (RocketMQ's
            // LOOKAHEAD(2)); otherwise it is not this rule's.
            let negated = self.is_keyword(Keyword::Not)
                && matches!(
                    self.peek_second(),
                    Tok::Keyword(
                        Keyword::Contains
                            | Keyword::StartsWith
                            | Keyword::EndsWith
                            | Keyword::Between
                            | Keyword::In
                    )
                );
            if negated {
                self.next();
            }
            let Tok::Keyword(keyword) = self.peek().tok else {
                return Ok(left);
            };
            let op = match keyword {
                Keyword::Contains => TextOp::Contains,
                Keyword::StartsWith => TextOp::StartsWith,
                Keyword::EndsWith => TextOp::EndsWith,
                Keyword::Between => {
                    self.next();
                    let low = self.unary()?;
                    self.expect(Tok::Keyword(Keyword::And), "between the bounds of BETWEEN")?;
                    let high = self.unary()?;
                    left = self.between(left, low, high, negated)?;
                    continue;
                }
                Keyword::In => {
                    left = self.in_list(left, negated)?;
                    continue;
                }
                _ => return Ok(left),
            };
            self.next();
            let search = self.string(keyword.name())?;
            let (at, depth) = (left.at, left.depth);
            left = self.node(
                Expr::Text {
                    op,
                    negated,
                    operand: Box::new(left.expr),
                    search,
                },
                at,
                depth,
            )?;
        }
    }

    /// `IN ('a', 'b')` after `left`, which must be a property.
    fn in_list(&mut self, left: Node, negated: bool) -> Result<Node, FilterError> {
        self.next();
        let Expr::Property(property) = left.expr else {
            return Err(self.error(
                left.at,
                format!("IN needs a property on its left, not {}", left.expr.kind()),
            ));
        };
        self.expect(Tok::LParen, "after IN")?;
        let mut values = vec![self.string("IN (")?];
        loop {
            let token = self.next();
            match token.tok {
                Tok::Comma => values.push(self.string("','")?),
                Tok::RParen => break,
                other => {
                    return Err(self.error(
                        token.at,
                        format!(
                            "expected ',' or ')' in the IN list, found {}",
                            other.describe()
                        ),
                    ))
                }
            }
        }
        self.node(
            Expr::In {
                property,
                values,
                negated,
            },
            left.at,
            left.depth,
        )
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        let at = self.peek().at;
        match self.peek().tok {
            Tok::Plus => {
                self.next();
                self.enter(at)?;
                let operand = self.unary();
                self.nesting -= 1;
                operand
            }
            Tok::Minus => {
                self.next();
                self.enter(at)?;
                let operand = self.unary();
                self.nesting -= 1;
                let operand = operand?;
                self.node(Expr::Negate(Box::new(operand.expr)), at, operand.depth)
            }
            Tok::Keyword(Keyword::Not) => {
                self.next();
                self.enter(at)?;
                let operand = self.unary();
                self.nesting -= 1;
                self.not(operand?, at)
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Node, FilterError> {
        let token = self.next();
        let leaf = |expr| Node {
            expr,
            at: token.at,
            depth: 1,
        };
        match &token.tok {
            Tok::Str(s) => Ok(leaf(Expr::Literal(Literal::Str(s.clone())))),
            Tok::Decimal(digits) => {
                let value: i64 = digits.parse().map_err(|_| {
                    self.error(token.at, format!("the integer {digits} is out of range"))
                })?;
                Ok(leaf(Expr::Literal(match i32::try_from(value) {
                    Ok(int) => Literal::Int(int),
                    Err(_) => Literal::Long(value),
                })))
            }
            Tok::Float(text) => match text.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(leaf(Expr::Literal(Literal::Double(value)))),
                _ => Err(self.error(token.at, format!("the number {text} is out of range"))),
            },
            Tok::Keyword(Keyword::True) => Ok(leaf(Expr::Bool(Some(true)))),
            Tok::Keyword(Keyword::False) => Ok(leaf(Expr::Bool(Some(false)))),
            Tok::Keyword(Keyword::Null) => Ok(leaf(Expr::Bool(None))),
            Tok::Ident(name) => Ok(leaf(Expr::Property((*name).to_owned()))),
            Tok::LParen => {
                self.enter(token.at)?;
                let inner = self.or();
                self.nesting -= 1;
                let inner = inner?;
                self.expect(Tok::RParen, "to close '('")?;
                Ok(inner)
            }
            other => Err(self.error(
                token.at,
                format!(
                    "expected a value, a property or '(', found {}",
                    other.describe()
                ),
            )),
        }
    }
}
