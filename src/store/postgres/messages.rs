//! The hub's message log on PostgreSQL: the append (the sequence `store::messages`
//! describes) and a room's position. The rest of the log's statements are shared with
//! SQLite (`store::messages`).

use super::PgStore;
use crate::hub::message::Position;
use crate::store::StoreResult;

impl PgStore {
    /// Appends `new` to its room inside `tx` (see the module doc).
    pub(crate) async fn append_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        new: &crate::hub::message::NewMessage,
    ) -> Result<crate::hub::message::Appended, sqlx::Error> {
        let now = crate::store::messages::now_ms();
        sqlx::query(
            "INSERT INTO rooms (name, last_id, pruned_through, created_ms) VALUES ($1, 0, 0, $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&new.room)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let id: i64 = sqlx::query_scalar(
            "UPDATE rooms SET last_id = last_id + 1 WHERE name = $1 RETURNING last_id",
        )
        .bind(&new.room)
        .fetch_one(&mut **tx)
        .await?;
        let author_id = (new.author.id != 0).then_some(new.author.id);
        if let Some(client_id) = &new.client_id {
            let earlier: Option<crate::store::messages::MessageRow> = sqlx::query_as(concat!(
                "SELECT ",
                crate::store::messages::message_columns!(),
                " FROM messages WHERE room = $1 AND user_id = $2 AND client_id = $3"
            ))
            .bind(&new.room)
            .bind(author_id)
            .bind(client_id)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = earlier {
                // The id taken above is given back when the caller drops
                // the transaction instead of committing it.
                return Ok(crate::hub::message::Appended {
                    message: row.into(),
                    duplicate: true,
                });
            }
        }
        let row: crate::store::messages::MessageRow = sqlx::query_as(concat!(
            "INSERT INTO messages (",
            crate::store::messages::message_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
            crate::store::messages::message_columns!()
        ))
        .bind(&new.room)
        .bind(id)
        .bind(author_id)
        .bind(&new.author.name)
        .bind(&new.text)
        .bind(new.event.as_ref().map(|e| e.to_string()))
        .bind(&new.client_id)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        Ok(crate::hub::message::Appended {
            message: row.into(),
            duplicate: false,
        })
    }

    pub(super) async fn append_message_now(
        &self,
        new: &crate::hub::message::NewMessage,
    ) -> StoreResult<crate::hub::message::Appended> {
        let mut tx = self.begin_write().await?;
        let appended = Self::append_in(&mut tx, new).await?;
        if !appended.duplicate {
            tx.commit().await?;
        }
        Ok(appended)
    }

    pub(super) async fn room_position_now(&self, room: &str) -> StoreResult<Position> {
        let row: Option<(i64, i64)> = sqlx::query_as(crate::store::messages::ROOM_POSITION)
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|(last_id, pruned_through)| Position {
                last_id,
                pruned_through,
            })
            .unwrap_or_default())
    }
}
