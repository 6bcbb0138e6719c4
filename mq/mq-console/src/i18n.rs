//! English and Chinese. Every text of the pages is a field of [`Texts`],
//! so a language that lacks one does not compile. The language comes from
//! `?lang=en|zh` (which also sets the `lang` cookie), else the cookie, else
//! the browser's `Accept-Language`.

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// `en` or `zh`; anything else is none.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// The HTML `lang` attribute.
    pub fn html(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// Chinese when the browser prefers it (its first language), else English.
    pub fn from_accept_language(header: &str) -> Lang {
        let first = header.split(',').next().unwrap_or("").trim();
        if first.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }
}

macro_rules! texts {
    ($($field:ident: $en:literal, $zh:literal;)*) => {
        /// The pages' texts in one language.
        pub struct Texts {
            $(pub $field: &'static str,)*
        }
        static EN: Texts = Texts { $($field: $en,)* };
        static ZH: Texts = Texts { $($field: $zh,)* };
    };
}

texts! {
    console: "RocketMQ Console", "RocketMQ 控制台";
    nav_dashboard: "Dashboard", "驾驶舱";
    nav_cluster: "Cluster", "集群";
    in_hour: "Messages in, last hour", "最近一小时生产";
    out_hour: "Messages out, last hour", "最近一小时消费";
    in_day: "Messages in, last day", "最近一天生产";
    out_day: "Messages out, last day", "最近一天消费";
    top_topics_hour: "Top topics, last hour (messages in)", "最近一小时热门主题（生产）";
    top_topics_day: "Top topics, last day (messages in)", "最近一天热门主题（生产）";
    nav_topics: "Topics", "主题";
    nav_consumers: "Consumers", "消费者";
    nav_producers: "Producers", "生产者";
    nav_messages: "Messages", "消息";
    nav_dlq: "Dead letters", "死信";
    nav_transactions: "Transactions", "事务";
    pending_note: "Half messages whose producer has not committed or rolled back yet (at most 1,000 per broker), with how often the broker checked each back.", "生产者尚未提交或回滚的半消息（每个 Broker 最多 1000 条）及 Broker 回查的次数。";
    no_pending: "No half message is pending.", "没有待处理的半消息。";
    age_seconds: "Age (s)", "已等待（秒）";
    check_times: "Check-backs", "回查次数";
    dead_letters: "Dead letters", "死信消息数";
    browse: "Browse", "浏览";
    original_topic: "Original topic", "原主题";
    resend_selected: "Resend the selected to their topic", "将选中的消息重新发送到原主题";
    resent: "Resent", "已重新发送";
    previous: "Previous", "上一页";
    next: "Next", "下一页";
    login: "Log in", "登录";
    logout: "Log out", "退出";
    username: "User name", "用户名";
    password: "Password", "密码";
    login_failed: "Wrong user name or password.", "用户名或密码错误。";
    session_expired: "Please log in.", "请登录。";
    namesrv: "Name server", "NameServer";
    switch: "Switch", "切换";
    cluster: "Cluster", "集群";
    broker: "Broker", "Broker";
    broker_id: "BID", "编号";
    role: "Role", "角色";
    master: "master", "主";
    slave: "slave", "从";
    address: "Address", "地址";
    version: "Version", "版本";
    in_tps: "In TPS", "生产 TPS";
    out_tps: "Out TPS", "消费 TPS";
    in_today: "Messages in today", "今日生产";
    out_today: "Messages out today", "今日消费";
    fall_behind: "Behind master (bytes)", "落后主节点（字节）";
    unreachable: "unreachable", "无法连接";
    no_brokers: "No broker is registered with this name server.", "此 NameServer 上没有注册的 Broker。";
    runtime_info: "Runtime info", "运行信息";
    config: "Configuration", "配置";
    key: "Key", "键";
    value: "Value", "值";
    update: "Update", "更新";
    editable_keys: "Keys the broker lets you change while it runs", "运行时可修改的配置项";
    other_keys: "All keys", "全部配置项";
    topic: "Topic", "主题";
    topics: "Topics", "主题";
    filter_normal: "Normal", "普通";
    filter_retry: "Retry", "重试";
    filter_dlq: "Dead letter", "死信";
    filter_system: "System", "系统";
    filter_all: "All", "全部";
    search: "Search", "搜索";
    kind: "Kind", "类型";
    create_topic: "Create or update a topic", "创建或更新主题";
    target: "On", "目标";
    read_queues: "Read queues", "读队列数";
    write_queues: "Write queues", "写队列数";
    perm: "Permission", "权限";
    order: "Ordered", "顺序";
    save: "Save", "保存";
    delete: "Delete", "删除";
    delete_topic: "Delete this topic", "删除该主题";
    type_to_confirm: "Type the name to confirm", "输入名称以确认";
    confirm_mismatch: "The name typed does not match; nothing was deleted.", "输入的名称不匹配，未删除任何内容。";
    status: "Status", "状态";
    queue: "Queue", "队列";
    min_offset: "Min offset", "最小位点";
    max_offset: "Max offset", "最大位点";
    last_update: "Last update", "最后更新";
    route: "Route", "路由";
    consumer_groups: "Consumer groups", "消费组";
    group: "Group", "消费组";
    lag: "Lag", "堆积";
    tps: "TPS", "TPS";
    clients: "Clients", "客户端数";
    model: "Model", "消费模式";
    consume_type: "Type", "消费类型";
    send_message: "Send a test message", "发送测试消息";
    tag: "Tag", "Tag";
    message_key: "Key", "Key";
    body: "Body", "消息体";
    send: "Send", "发送";
    sent: "Sent", "已发送";
    reset_offset: "Reset offset by time", "按时间重置位点";
    reset_time: "Time (UTC, yyyy-mm-dd hh:mm:ss), or now", "时间（UTC，yyyy-mm-dd hh:mm:ss），或 now";
    reset: "Reset", "重置";
    force: "Force", "强制";
    no_groups: "No consumer group consumes this topic.", "没有消费组消费此主题。";
    groups: "Consumer groups", "消费组";
    create_group: "Create or update a group", "创建或更新消费组";
    retry_max_times: "Max retries", "最大重试次数";
    broadcast: "Broadcast allowed", "允许广播";
    orderly: "FIFO for 5.x clients (consumeMessageOrderly)", "5.x 客户端顺序消费 (consumeMessageOrderly)";
    consume_enable: "Consume enabled", "允许消费";
    delete_group: "Delete this group", "删除该消费组";
    connections: "Connections", "连接";
    client_id: "Client id", "客户端 ID";
    client_addr: "Client address", "客户端地址";
    language: "Language", "语言";
    subscriptions: "Subscriptions", "订阅关系";
    expression: "Expression", "表达式";
    consume_detail: "Consume detail", "消费详情";
    broker_offset: "Broker offset", "Broker 位点";
    consumer_offset: "Consumer offset", "消费位点";
    offline: "offline", "离线";
    producer_group: "Producer group", "生产者组";
    query: "Query", "查询";
    by_key: "By key", "按 Key";
    by_id: "By message id", "按消息 ID";
    by_time: "By time (UTC)", "按时间（UTC）";
    message_id: "Message id", "消息 ID";
    store_time: "Store time", "存储时间";
    born_time: "Born time", "产生时间";
    born_host: "Born host", "产生地址";
    store_host: "Store host", "存储地址";
    properties: "Properties", "属性";
    body_text: "Body (text)", "消息体（文本）";
    body_hex: "Body (hex)", "消息体（十六进制）";
    truncated: "shown up to", "仅显示前";
    bytes: "bytes", "字节";
    consume_state: "Consume state per group", "各消费组的消费状态";
    consumed: "consumed", "已消费";
    not_consumed: "not consumed yet", "尚未消费";
    no_messages: "No message found.", "未找到消息。";
    reconsume_times: "Reconsume times", "重试次数";
    details: "Details", "详情";
    none: "none", "无";
    viewer_only: "Your account may only look; an admin account may change the cluster.", "您的账户只有查看权限；修改集群需要管理员账户。";
    forbidden: "This needs an admin account.", "此操作需要管理员账户。";
    bad_csrf: "The form has expired; please try again.", "表单已过期，请重试。";
    not_found: "Not found.", "未找到。";
    back: "Back", "返回";
    error: "Error", "错误";
    done: "Done", "完成";
    refresh_note: "Refreshes every 10 s.", "每 10 秒自动刷新。";
    all_times_utc: "Times are UTC.", "时间均为 UTC。";
    nav_orders: "Orders", "订单";
    shop_order: "Order", "订单";
    nav_invariants: "Invariants", "一致性检查";
    nav_audit: "Audit log", "操作审计";
    action: "Action", "操作";
    all: "All", "全部";
    all_hold: "Every invariant holds", "所有不变式均成立";
    some_broken: "Some invariants are broken", "部分不变式不成立";
    holds: "holds", "成立";
    broken: "broken", "不成立";
    why: "Why", "原因";
    amount: "Amount", "金额";
    amount_to_pay: "To pay", "应付金额";
    applied: "applied", "已处理";
    not_applied: "not applied", "未处理";
    audit_file: "Kept in", "保存于";
    audit_memory: "No data folder: kept in memory only.", "未配置数据目录：仅保存在内存中。";
    committed_for_live: "committed although the order is live:", "订单有效却提交了补偿消息：";
    coupon: "Coupon", "优惠券";
    created: "Created", "创建时间";
    updated: "Updated", "更新时间";
    failed: "failed", "失败";
    filter: "Filter", "筛选";
    from_time: "From (UTC)", "开始（UTC）";
    to_time: "To (UTC)", "结束（UTC）";
    goods: "Goods", "商品";
    in_flight: "the saga is still running", "事务流程仍在进行";
    inv_stock: "Stock", "库存";
    inv_stock_rule: "initial = current + quantities of CONFIRMED/PAID orders: each decided order holds in the stock ledger exactly its quantity while live and nothing once cancelled.", "初始库存 = 当前库存 + 已确认/已支付订单数量：每个已决订单在库存流水中有效时恰好占用其数量，取消后不占用。";
    inv_balance: "Balance", "余额";
    inv_balance_rule: "initial = current + balance used by CONFIRMED/PAID orders: each decided order holds in the money ledger exactly its balance use while live and nothing once cancelled.", "初始余额 = 当前余额 + 已确认/已支付订单使用的余额：每个已决订单有效时恰好占用其余额，取消后不占用。";
    inv_coupon: "Coupons", "优惠券";
    inv_coupon_rule: "A coupon is used by at most one live order; a cancelled order's coupon is usable again.", "一张优惠券至多被一个有效订单使用；已取消订单的优惠券可再次使用。";
    inv_paid: "Paid orders", "已支付订单";
    inv_paid_rule: "Every PAID order has exactly one payment log and exactly its points (one per whole unit paid).", "每个已支付订单恰有一条支付日志和对应积分（每支付一元一分）。";
    inv_pending: "Pending orders", "待定订单";
    inv_pending_rule: "No order is PENDING longer than the saga timeout plus one check-back interval.", "没有订单处于 PENDING 超过事务超时加一次回查间隔。";
    newest: "Newest", "最新";
    no_audit: "No operator action recorded yet.", "尚无操作记录。";
    no_ledger_row: "no ledger row", "无流水记录";
    no_orders: "No order found.", "未找到订单。";
    no_payment: "no payment yet", "尚未支付";
    not_on_broker: "not found on the broker", "在 Broker 上未找到";
    not_used: "not used", "未使用";
    nothing_reserved: "nothing reserved", "未预留";
    not_yet: "not yet", "尚未发生";
    nothing_to_compensate: "nothing to compensate", "无需补偿";
    operator: "Operator", "操作员";
    outcome: "Outcome", "结果";
    payment: "Payment", "支付单";
    points: "points", "积分";
    quantity: "Quantity", "数量";
    reason: "Reason", "原因";
    saga: "Saga", "事务流程";
    step_saved: "Order saved PENDING", "订单保存为 PENDING";
    step_half: "ORDER_CANCEL half message stored", "ORDER_CANCEL 半消息已存储";
    step_stock: "Stock reserved (goods)", "扣减库存（商品服务）";
    step_coupon: "Coupon used (coupon)", "使用优惠券（优惠券服务）";
    step_balance: "Balance reserved (user)", "扣减余额（用户服务）";
    step_decided: "Decided", "结果";
    step_committed: "Half message committed: ORDER_CANCEL delivered", "半消息已提交：投递 ORDER_CANCEL";
    step_cancel_applied: "ORDER_CANCEL applied by each group", "各消费组处理 ORDER_CANCEL";
    step_rolled_back: "Half message rolled back", "半消息已回滚";
    step_payment: "Payment created", "创建支付单";
    step_callback: "Gateway callback", "支付网关回调";
    step_pay_success: "PAY_SUCCESS published", "发布 PAY_SUCCESS";
    step_pay_applied: "PAY_SUCCESS applied by order, log and points", "订单、日志、积分服务处理 PAY_SUCCESS";
    time: "Time", "时间";
    trade_no: "Trade no.", "交易号";
    user_id: "User", "用户";
    resend_to_group: "Resend to this group", "重新发送给该组";
    confirm_resend: "I want this group's consumer to consume the message again", "确认让该组的消费者再次消费此消息";
    must_confirm: "Tick the confirmation box first; nothing was sent.", "请先勾选确认框；未发送任何内容。";
    no_live_client: "No consumer of this group is online, so nothing consumed the message. Start one and try again. Group:", "该消费组没有在线的消费者，消息未被消费。请启动消费者后重试。消费组：";
    consumed_directly: "Consumed directly", "直接消费结果";
    spent: "took", "耗时";
    series_brokers: "Messages in and out per broker", "各 Broker 的生产与消费";
    series_topics: "Messages in and out of the busiest topics", "最繁忙主题的生产与消费";
    last_hour: "Last hour", "最近一小时";
    last_day: "Last day", "最近一天";
    legend_in: "in", "生产";
    legend_out: "out", "消费";
    no_samples: "No samples yet. The console samples the cluster every (seconds):", "尚无采样数据。控制台采样集群的间隔（秒）：";
    sampled_every: "Sampled every (seconds):", "采样间隔（秒）：";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_choice() {
        assert_eq!(Lang::parse("zh"), Some(Lang::Zh));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(
            Lang::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"),
            Lang::Zh
        );
        assert_eq!(Lang::from_accept_language("en-US,zh;q=0.5"), Lang::En);
        assert_eq!(Lang::Zh.texts().nav_topics, "主题");
        assert_eq!(Lang::En.texts().nav_topics, "Topics");
    }
}
