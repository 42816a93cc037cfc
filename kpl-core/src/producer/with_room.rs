//! Puts whose results carry their record's buffer room ([`Room`]): for
//! bindings that hand results to another thread, so that results not yet
//! delivered there still count against the buffer limits.

use std::sync::Arc;
use std::time::Duration;

use super::Producer;
use crate::error::Error;
use crate::pipeline::{IndexedRoomCallback, Reply, Room};
use crate::record::{PutResult, UserRecord};

impl Producer {
    /// Like [`put_with`](Self::put_with), but the callback also gets the
    /// record's buffer room, which stays taken until the [`Room`] is
    /// dropped. A binding that queues the result for a host thread drops
    /// the room once the host has it.
    ///
    /// ```no_run
    /// # async fn example(producer: kpl_core::Producer) -> Result<(), kpl_core::Error> {
    /// use kpl_core::UserRecord;
    ///
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// producer
    ///     .put_with_room(UserRecord::new("key", "data"), move |result, room| {
    ///         let _ = tx.send((result, room));
    ///     })
    ///     .await?;
    /// let (result, room) = rx.recv().unwrap();
    /// println!("{:?}", result.is_ok());
    /// drop(room); // delivered: the room goes back to the producer
    /// # Ok(()) }
    /// ```
    pub async fn put_with_room<F>(&self, record: UserRecord, callback: F) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>, Room) + Send + 'static,
    {
        self.submit(record, Reply::callback_with_room(Box::new(callback)))
            .await
    }

    /// Like [`try_put_with`](Self::try_put_with), with the record's buffer
    /// room handed to the callback (see [`put_with_room`](Self::put_with_room)).
    pub fn try_put_with_room<F>(&self, record: UserRecord, callback: F) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>, Room) + Send + 'static,
    {
        self.submit_now(record, Reply::callback_with_room(Box::new(callback)))
    }

    /// Like [`put_blocking_with`](Self::put_blocking_with), with the
    /// record's buffer room handed to the callback (see
    /// [`put_with_room`](Self::put_with_room)).
    pub fn put_blocking_with_room<F>(
        &self,
        record: UserRecord,
        timeout: Option<Duration>,
        callback: F,
    ) -> Result<(), Error>
    where
        F: FnOnce(Result<PutResult, Error>, Room) + Send + 'static,
    {
        self.submit_blocking(
            record,
            Reply::callback_with_room(Box::new(callback)),
            timeout,
        )
    }

    /// Like [`put_many_with`](Self::put_many_with), with each record's
    /// buffer room handed to the callback (see
    /// [`put_with_room`](Self::put_with_room)); a refused record's room is
    /// empty.
    pub async fn put_many_with_room<F>(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        callback: F,
    ) where
        F: Fn(usize, Result<PutResult, Error>, Room) + Send + Sync + 'static,
    {
        self.put_many_holding(
            records,
            Arc::new(Box::new(callback)),
            Some(self.put_timeout()),
        )
        .await
    }

    /// Like [`try_put_many_with`](Self::try_put_many_with), with each
    /// record's buffer room handed to the callback (see
    /// [`put_with_room`](Self::put_with_room)).
    pub fn try_put_many_with_room<F>(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        callback: F,
    ) where
        F: Fn(usize, Result<PutResult, Error>, Room) + Send + Sync + 'static,
    {
        let put = self.put_many_holding(records, Arc::new(Box::new(callback)), None);
        // Never waits, so it completes on its first poll.
        futures::executor::block_on(put);
    }

    async fn put_many_holding(
        &self,
        records: impl IntoIterator<Item = UserRecord>,
        callback: IndexedRoomCallback,
        wait: Option<Option<Duration>>,
    ) {
        let reply_for = |i| Reply::indexed_with_room(callback.clone(), i);
        let refused_to = |i, e| callback(i, Err(e), Room::none());
        self.submit_many(records, wait, reply_for, refused_to).await;
    }
}
