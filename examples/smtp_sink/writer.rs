//! The SMTP sink's storage: inline, or on a writer thread that reports to the loop.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use sockloop::{LoopHandle, Remote, Token};

use super::maildir::{Maildir, Message};
use super::Sink;

/// The most messages the writer takes in one batch (one sync of `new/`).
const BATCH: usize = 256;

/// Runs on the loop thread with a batch's results: `(channel, sequence number, result)`.
pub type Done = fn(&mut LoopHandle<Sink>, Vec<(Token, u64, io::Result<String>)>);

/// Where sessions deliver their messages.
#[derive(Debug)]
pub enum Storage {
    /// On the calling thread: the reply is known before the next command is parsed.
    Inline(Maildir),
    /// On a writer thread; results come back to the loop through a [`Remote`].
    Writer(Writer),
}

/// A message for the writer thread, and whom to tell.
pub struct Job {
    /// The session's channel.
    pub token: Token,
    /// The session's sequence number for it.
    pub seq: u64,
    /// The message.
    pub message: Message,
}

/// The writer thread: delivers in order, in batches, and reports each batch's results to
/// the loop. Dropping it abandons the jobs not started (none of them was acknowledged),
/// finishes the batch being written and joins the thread.
#[derive(Debug)]
pub struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    /// The Maildir and the job queue, until [`start`](Writer::start) hands them to the thread.
    idle: Option<(Maildir, mpsc::Receiver<Job>)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// A writer for `maildir`, not started yet: it lives in the loop's state, and its
    /// thread reports through that loop's `Remote` ([`start`](Writer::start)). Jobs
    /// submitted before then wait.
    pub fn new(maildir: Maildir) -> Writer {
        let (jobs, rx) = mpsc::channel::<Job>();
        Writer {
            jobs: Some(jobs),
            idle: Some((maildir, rx)),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// Starts the thread; each batch's results go to `done`, run on the loop behind
    /// `remote`. Does nothing if it runs already.
    ///
    /// # Errors
    ///
    /// If the thread cannot be started.
    pub fn start(&mut self, remote: Remote<Sink>, done: Done) -> io::Result<()> {
        let Some((maildir, rx)) = self.idle.take() else {
            return Ok(());
        };
        let stopping = Arc::clone(&self.stop);
        let thread = std::thread::Builder::new()
            .name("smtp_sink writer".to_string())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if stopping.load(Ordering::Acquire) {
                        return;
                    }
                    let (whom, messages): (Vec<(Token, u64)>, Vec<Message>) = batch
                        .into_iter()
                        .map(|j| ((j.token, j.seq), j.message))
                        .unzip();
                    let results = maildir.deliver(&messages);
                    drop(messages);
                    let results: Vec<_> = whom
                        .into_iter()
                        .zip(results)
                        .map(|((token, seq), r)| (token, seq, r))
                        .collect();
                    if remote.call(move |lp| done(lp, results)).is_err() {
                        return; // the loop is gone
                    }
                }
            })
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start the writer thread: {e}"))
            })?;
        self.thread = Some(thread);
        Ok(())
    }

    /// Queues `job`.
    ///
    /// # Errors
    ///
    /// If the thread has stopped.
    pub fn submit(&self, job: Job) -> io::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|tx| tx.send(job).ok())
            .ok_or_else(|| io::Error::other("the writer thread has stopped"))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
