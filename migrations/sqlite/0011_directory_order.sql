-- The directory list's orders and role filter (src/directory/order.rs): each page is
-- one index range, forwards or backwards, however many users there are.
--
-- Without a role: the name order reads users_name_key (name_key, id), the email
-- order users_email_key, the date order the primary key. With a role, these:
-- the role first, then the order (SQLite's indexes end with the rowid, the id).
CREATE INDEX users_role_name ON users (role, name_key, id);
CREATE INDEX users_role_email ON users (role, email_key);
CREATE INDEX users_role_id ON users (role, id);
