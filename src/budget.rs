//! A memory budget shared by all upload workers.
//!
//! Each worker reserves the bytes of the buffer it is about to fill (a whole
//! small file, or one multipart part) and gives them back when the request is
//! done. Peak memory therefore depends on `--max-memory`, not on `--workers`:
//! extra workers wait here instead of allocating.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// The shared pool of bytes.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    used: Mutex<u64>,
    released: Condvar,
}

/// Bytes held until dropped, plus the buffer they pay for.
#[derive(Debug)]
pub struct Buffer {
    budget: Arc<MemoryBudget>,
    reserved: u64,
    pub data: Vec<u8>,
}

impl MemoryBudget {
    /// A budget of `total` bytes.
    pub fn new(total: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            total: total.max(1),
            used: Mutex::new(0),
            released: Condvar::new(),
        })
    }

    /// Blocks until `len` bytes are free (a request larger than the whole
    /// budget waits for all of it), then returns a zeroed buffer of `len`
    /// bytes charged to the budget.
    pub fn buffer(self: &Arc<Self>, len: usize) -> Buffer {
        let want = (len as u64).min(self.total);
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used + want > self.total {
            used = self
                .released
                .wait(used)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *used += want;
        drop(used);
        Buffer {
            budget: Arc::clone(self),
            reserved: want,
            data: vec![0; len],
        }
    }

    /// Bytes currently reserved.
    #[cfg(test)]
    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let mut used = self
            .budget
            .used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *used -= self.reserved;
        drop(used);
        self.budget.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn second_reservation_waits_for_the_first() {
        let budget = MemoryBudget::new(10);
        let first = budget.buffer(8);
        assert_eq!(budget.in_use(), 8);
        let (tx, rx) = mpsc::channel();
        let b2 = Arc::clone(&budget);
        let waiter = std::thread::spawn(move || {
            let second = b2.buffer(5);
            tx.send(second.data.len()).unwrap();
        });
        // The waiter cannot finish while `first` holds 8 of 10 bytes.
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        drop(first);
        assert_eq!(rx.recv().unwrap(), 5);
        waiter.join().unwrap();
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn oversized_request_takes_the_whole_budget() {
        let budget = MemoryBudget::new(4);
        let big = budget.buffer(16);
        assert_eq!(big.data.len(), 16);
        assert_eq!(budget.in_use(), 4);
    }
}
