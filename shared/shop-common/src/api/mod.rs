//! The requests and answers that pass between the shop's services, defined
//! once for both ends: the service that answers serializes these types and
//! the one that calls reads them back, so a field or a status cannot drift
//! apart on one side. Each module is one service's API as others call it.

pub mod coupon;
pub mod goods;
pub mod order;
pub mod pay;
pub mod user;
