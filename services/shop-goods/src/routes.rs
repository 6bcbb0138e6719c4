//! The HTTP API: request and response bodies, and one handler per endpoint.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
pub use shop_common::api::goods::{GoodsView, ReserveRequest};
use shop_common::auth::{Principal, ServiceCaller};
use shop_common::http::json_replayed;
use shop_common::ledger::{next_after, LedgerQuery};
use shop_common::money::{from_cents, to_cents};
use shop_common::ApiError;
use uuid::Uuid;

use crate::error::GoodsError;
use crate::extract::{decimal, Json, Path, Query};
use crate::repo::{self, Goods, GoodsChange, NewGoods, OrderLedger, Reservation};
use crate::AppState;

/// Page size of `GET /goods` when the client gives none.
pub const DEFAULT_PAGE: i64 = 100;

/// `POST /goods`. `price` is a string or a number with at most two decimals.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateGoods {
    pub name: String,
    #[serde(deserialize_with = "decimal")]
    pub price: Decimal,
    pub stock: i64,
}

impl From<Goods> for GoodsView {
    fn from(g: Goods) -> Self {
        GoodsView {
            id: g.id,
            name: g.name,
            price: from_cents(g.price_cents),
            stock: g.stock,
            created_at: g.created_at,
        }
    }
}

/// `PATCH /goods/{id}`: the fields to change, each optional.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeGoods {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "optional_decimal")]
    pub price: Option<Decimal>,
    pub stock: Option<i64>,
}

fn optional_decimal<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize, utoipa::ToSchema)]
    struct Wrapped(#[serde(deserialize_with = "decimal")] Decimal);
    Option::<Wrapped>::deserialize(deserializer).map(|w| w.map(|Wrapped(d)| d))
}

/// `GET /goods?after_id=&limit=`.
#[derive(Debug, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    pub after_id: i64,
    pub limit: Option<i64>,
}

/// The answer to a reservation, the same every time it is repeated.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReservationView {
    pub order_id: Uuid,
    pub goods_id: i64,
    pub quantity: i64,
    pub reserved_at: i64,
}

impl From<Reservation> for ReservationView {
    fn from(r: Reservation) -> Self {
        ReservationView {
            order_id: r.order_id,
            goods_id: r.goods_id,
            quantity: r.quantity,
            reserved_at: r.reserved_at,
        }
    }
}

/// `GET /goods/{id}/reservations/{order_id}`: `status` is `reserved` (stock
/// held) or `cancelled` (`restored_quantity` went back to stock; 0 when the
/// order was cancelled before it reserved anything).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerView {
    pub order_id: Uuid,
    pub goods_id: i64,
    pub status: String,
    pub reserved_quantity: i64,
    pub reserved_at: Option<i64>,
    pub restored_quantity: i64,
    pub cancelled_at: Option<i64>,
}

fn ledger_view(goods_id: i64, ledger: OrderLedger) -> Result<LedgerView, GoodsError> {
    let reservation = ledger.reservation.filter(|r| r.goods_id == goods_id);
    // A cancellation is shown for any goods when it restored nothing, since
    // it then refuses reservations of every goods for that order.
    let cancellation = ledger.cancellation.filter(|c| {
        c.restored
            .is_none_or(|(restored_goods, _)| restored_goods == goods_id)
    });
    if reservation.is_none() && cancellation.is_none() {
        return Err(GoodsError::ReservationNotFound {
            order_id: ledger.order_id,
            goods_id,
        });
    }
    Ok(LedgerView {
        order_id: ledger.order_id,
        goods_id,
        status: if cancellation.is_some() {
            "cancelled"
        } else {
            "reserved"
        }
        .to_owned(),
        reserved_quantity: reservation.as_ref().map_or(0, |r| r.quantity),
        reserved_at: reservation.as_ref().map(|r| r.reserved_at),
        restored_quantity: cancellation
            .as_ref()
            .and_then(|c| c.restored)
            .map_or(0, |(_, q)| q),
        cancelled_at: cancellation.map(|c| c.cancelled_at),
    })
}

fn price_cents(price: Decimal) -> Result<i64, ApiError> {
    to_cents(price).map_err(|e| ApiError::bad_request("invalid_price", format!("price: {e}")))
}

/// `POST /goods` (operator only) → 201 [`GoodsView`]; 400 `invalid_name`,
/// `invalid_price` (0.00 too: nothing is sold for nothing), `invalid_stock`;
/// 401 without a token, 403 `operator_only`.
#[utoipa::path(
    post,
    path = "/goods",
    tag = "goods",
    request_body = CreateGoods,
    responses(
        (status = 201, description = "Created", body = GoodsView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn create_goods(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateGoods>,
) -> Result<(StatusCode, axum::Json<GoodsView>), ApiError> {
    principal.require_operator()?;
    let price_cents = price_cents(body.price)?;
    let goods = repo::create_goods(
        &state.db,
        &NewGoods {
            name: body.name,
            price_cents,
            stock: body.stock,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(goods.into())))
}

/// `PATCH /goods/{id}` (operator only) → 200 [`GoodsView`] as changed; 400
/// as [`create_goods`] and `invalid_body` for an unknown field, 401, 403
/// `operator_only`, 404 `goods_not_found`.
#[utoipa::path(
    patch,
    path = "/goods/{id}",
    tag = "goods",
    params(("id" = i64, Path)),
    request_body = ChangeGoods,
    responses(
        (status = 200, description = "OK", body = GoodsView),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn change_goods(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
    Json(body): Json<ChangeGoods>,
) -> Result<axum::Json<GoodsView>, ApiError> {
    principal.require_operator()?;
    let change = GoodsChange {
        name: body.name,
        price_cents: body.price.map(price_cents).transpose()?,
        stock: body.stock,
    };
    Ok(axum::Json(
        repo::update_goods(&state.db, id, &change).await?.into(),
    ))
}

/// `GET /goods` → 200 `[GoodsView]` by id; 400 `invalid_limit`.
#[utoipa::path(
    get,
    path = "/goods",
    tag = "goods",
    params(ListQuery),
    responses(
        (status = 200, description = "OK", body = Vec<GoodsView>),
        shop_common::openapi::Refusals
    )
)]
pub async fn list_goods(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<axum::Json<Vec<GoodsView>>, ApiError> {
    let goods = repo::list_goods(
        &state.db,
        query.after_id,
        query.limit.unwrap_or(DEFAULT_PAGE),
    )
    .await?;
    Ok(axum::Json(goods.into_iter().map(GoodsView::from).collect()))
}

/// `GET /goods/{id}` → 200 [`GoodsView`]; 404 `goods_not_found`.
#[utoipa::path(
    get,
    path = "/goods/{id}",
    tag = "goods",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "OK", body = GoodsView),
        shop_common::openapi::Refusals
    )
)]
pub async fn get_goods(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<axum::Json<GoodsView>, ApiError> {
    Ok(axum::Json(repo::get_goods(&state.db, id).await?.into()))
}

/// `POST /internal/goods/{id}/reservations` (the order service only) → 200
/// [`ReservationView`] (the same on a replay, with `idempotent-replayed:
/// true`); 400 `invalid_quantity`, 401 `service_unauthenticated`, 403
/// `service_forbidden`, 404 `goods_not_found`, 409 `insufficient_stock`,
/// `order_cancelled`, `reservation_mismatch`.
#[utoipa::path(
    post,
    path = "/internal/goods/{id}/reservations",
    tag = "goods",
    params(("id" = i64, Path)),
    request_body = ReserveRequest,
    responses(
        (status = 200, description = "OK", body = ReservationView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn reserve(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path(goods_id): Path<i64>,
    Json(body): Json<ReserveRequest>,
) -> Result<Response, ApiError> {
    caller.require(&["order"])?;
    let reserved = repo::reserve(&state.db, goods_id, body.order_id, body.quantity).await?;
    Ok(json_replayed(
        ReservationView::from(reserved.reservation),
        reserved.replayed,
    ))
}

/// `GET /internal/goods/{id}/reservations/{order_id}` (the order service
/// only) → 200 [`LedgerView`]; 401, 403 as [`reserve`], 404
/// `goods_not_found`, `reservation_not_found`.
#[utoipa::path(
    get,
    path = "/internal/goods/{id}/reservations/{order_id}",
    tag = "goods",
    params(("id" = i64, Path), ("order_id" = Uuid, Path)),
    responses(
        (status = 200, description = "OK", body = LedgerView),
        shop_common::openapi::Refusals
    ),
    security(("service_caller" = [], "service_timestamp" = [], "service_nonce" = [], "service_signature" = []))
)]
pub async fn order_ledger(
    State(state): State<AppState>,
    caller: ServiceCaller,
    Path((goods_id, order_id)): Path<(i64, Uuid)>,
) -> Result<axum::Json<LedgerView>, ApiError> {
    caller.require(&["order"])?;
    // An unknown goods is a 404 of its own, not a missing reservation.
    repo::get_goods(&state.db, goods_id).await?;
    let ledger = repo::order_ledger(&state.db, order_id).await?;
    Ok(axum::Json(ledger_view(goods_id, ledger)?))
}

/// A stock ledger row: `operation` is `reserve` or `cancel`; a cancel's
/// `goods_id` and `quantity` are what it put back (null and 0: nothing).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerRowView {
    pub order_id: Uuid,
    pub operation: String,
    pub goods_id: Option<i64>,
    pub quantity: i64,
    pub created_at: i64,
}

/// A page of ledger rows; `next` is the `after` of the next page (none
/// when this is the last).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LedgerPage {
    pub rows: Vec<LedgerRowView>,
    pub next: Option<Uuid>,
}

/// `GET /operator/stock-ledger` (operator only) → 200 [`LedgerPage`], so
/// that the console can show an order's reservations and check that the
/// stock held is what live orders took; 400 `invalid_query`,
/// `invalid_limit`; 401; 403 `operator_only`.
#[utoipa::path(
    get,
    path = "/operator/stock-ledger",
    tag = "goods",
    params(LedgerQuery),
    responses(
        (status = 200, description = "OK", body = LedgerPage),
        shop_common::openapi::Refusals
    ),
    security(("bearer" = []))
)]
pub async fn operator_ledger(
    State(state): State<AppState>,
    principal: Principal,
    Query(query): Query<LedgerQuery>,
) -> Result<axum::Json<LedgerPage>, ApiError> {
    principal.require_operator()?;
    let limit = shop_common::http::page_limit(query.limit)?;
    let rows = repo::ledger_rows(&state.db, query.order_id, query.after, limit).await?;
    let next = next_after(&query, limit, rows.iter().map(|r| r.order_id));
    Ok(axum::Json(LedgerPage {
        rows: rows
            .into_iter()
            .map(|r| LedgerRowView {
                order_id: r.order_id,
                operation: r.operation,
                goods_id: r.goods_id,
                quantity: r.quantity,
                created_at: r.created_at,
            })
            .collect(),
        next,
    }))
}

/// `GET /health`: the service answers and its database does too.
#[utoipa::path(
    get,
    path = "/health",
    tag = "goods",
    responses(
        (status = 200, description = "OK", body = serde_json::Value),
        shop_common::openapi::Refusals
    )
)]
pub async fn health(
    State(state): State<AppState>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    shop_common::http::health(&state.db).await
}
