-- One database per service (each service owns its tables).
CREATE DATABASE shop_goods;
CREATE DATABASE shop_coupon;
CREATE DATABASE shop_user;
CREATE DATABASE shop_order;
CREATE DATABASE shop_pay;
CREATE DATABASE shop_log;
CREATE DATABASE shop_points;
