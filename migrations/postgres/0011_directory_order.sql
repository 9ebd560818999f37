-- The directory list's orders and role filter (src/directory/order.rs): each page is
-- one index range, forwards or backwards, however many users there are. Names and
-- emails sort in code point order (COLLATE "C"), as on SQLite, whatever the locale.
--
-- Without a role: the name order reads users_name_key (name_key COLLATE "C", id),
-- the email order users_email_prefix (0010's, for email-prefix search; users_email_key
-- has the default collation), the date order the primary key. With a role, the role
-- first, then the order.
CREATE INDEX users_role_name ON users (role, name_key COLLATE "C", id);
CREATE INDEX users_role_email ON users (role, email_key COLLATE "C");
CREATE INDEX users_role_id ON users (role, id);
