//! Containing a panic inside one task, so a bug in a handler fails that task rather than the
//! process or the terminal.
//!
//! [`Contained`] wraps a future: it catches a panic raised while the future is polled and
//! returns it as a [`Panicked`] (message and location) instead. While it polls, it marks the
//! thread, and the hook that [`install_hook`] puts in front of the process's panic hook keeps
//! quiet for marked threads: no message across the console's screen and no terminal restore
//! for a panic that is already handled. It only remembers the location for the catcher, which
//! logs the panic. Panics anywhere else go to the previous hook as before.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    /// True while a [`Contained`] future is being polled on this thread.
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
    /// Where the last contained panic on this thread happened.
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic caught by [`Contained`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    /// The panic's message (`"Box<dyn Any>"` when it carried no text).
    pub message: String,
    /// `file:line:column` of the panic, when the hook saw it.
    pub location: Option<String>,
}

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(at) = &self.location {
            write!(f, " (at {at})")?;
        }
        Ok(())
    }
}

fn message_of(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}

/// A future whose panics come back as `Err(Panicked)`. See the module docs.
pub struct Contained<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Contained<F> {
    /// Wraps `future`.
    pub fn new(future: F) -> Self {
        Contained {
            inner: Box::pin(future),
        }
    }
}

impl<F: Future> Future for Contained<F> {
    type Output = Result<F::Output, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outer = CONTAINED.with(|c| c.replace(true));
        let inner = self.inner.as_mut();
        // The future is dropped right after a panic (it is never polled again), so whatever
        // state the panic left it in is never observed: unwind safety holds.
        let result = catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
        CONTAINED.with(|c| c.set(outer));
        match result {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => Poll::Ready(Err(Panicked {
                message: message_of(payload.as_ref()),
                location: LOCATION.with(|l| l.borrow_mut().take()),
            })),
        }
    }
}

/// Puts the containing hook in front of the current panic hook (see the module docs). Call it
/// after anything else that installs a hook (the console's terminal restore); calling it again
/// is harmless.
pub fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CONTAINED.with(Cell::get) {
            let at = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            LOCATION.with(|l| *l.borrow_mut() = at);
            return;
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_comes_back_as_an_error() {
        install_hook();
        let caught = Contained::new(async {
            tokio::task::yield_now().await;
            if true {
                panic!("handler bug {}", 42);
            }
            7
        })
        .await;
        let panicked = caught.expect_err("the panic");
        assert_eq!(panicked.message, "handler bug 42");
        assert!(
            panicked
                .location
                .as_deref()
                .is_some_and(|l| l.contains("contain.rs")),
            "{panicked:?}"
        );
        assert_eq!(Contained::new(async { 7 }).await, Ok(7));
        assert!(!CONTAINED.with(Cell::get), "the mark is cleared");
    }
}
