//! The request log the three endpoints keep for assertions: records in arrival order, each
//! filled in once its request is answered, and forgotten at once on a reset.

/// Requests in arrival order; see [`Handle::requests`](crate::Handle::requests).
pub(crate) struct RequestLog<R> {
    records: Vec<R>,
    /// Bumped by [`RequestLog::clear`], so a request in flight across a reset does not fill
    /// in the record of another.
    epoch: u64,
}

/// Where a request in flight was recorded: the log's epoch and its index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    epoch: u64,
    index: usize,
}

impl<R> Default for RequestLog<R> {
    fn default() -> Self {
        RequestLog {
            records: Vec::new(),
            epoch: 0,
        }
    }
}

impl<R: Clone> RequestLog<R> {
    /// Records a request on arrival.
    pub(crate) fn push(&mut self, record: R) -> Slot {
        self.records.push(record);
        Slot {
            epoch: self.epoch,
            index: self.records.len() - 1,
        }
    }

    /// The record of a request pushed at `slot`, unless the log was cleared since.
    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut R> {
        if slot.epoch == self.epoch {
            self.records.get_mut(slot.index)
        } else {
            None
        }
    }

    /// The records, in arrival order.
    pub(crate) fn records(&self) -> Vec<R> {
        self.records.clone()
    }

    /// Forgets every record (a request in flight is not recorded again when answered).
    pub(crate) fn clear(&mut self) {
        self.records = Vec::new();
        self.epoch += 1;
    }
}
