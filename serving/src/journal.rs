//! The demo's journal of accepted ratings: what makes its 202 durable.
//!
//! The demo's broker lives in the process's memory, so a rating it acknowledged is lost if
//! the process dies before the consumer has written it to the store. `POST /ratings` therefore
//! appends each event to this file and syncs it to disk (alongside producing it) before its
//! 202; at the next start
//! [`recover`] produces again every journalled event the store does not hold yet and keeps
//! only those in the file. With an external Kafka (`serve --brokers`) the broker's own
//! acknowledgement is the durable record and no journal is kept.
//!
//! One line per event, in the wire format (`schemas::events::encode`). Appends are group
//! committed: a writer thread takes every event waiting, writes them and syncs once, then
//! answers them all, so concurrent requests share one `fdatasync`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::Context;
use rdkafka::producer::FutureProducer;
use schemas::events::{RatingSubmitted, decode_at, encode, unix_now};
use store::Store;
use tokio::sync::oneshot;

/// An append-only, synced file of accepted rating events.
pub struct Journal {
    appends: mpsc::Sender<(Vec<u8>, oneshot::Sender<std::io::Result<()>>)>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` for appending.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the ratings journal {}", path.display()))?;
        let (appends, waiting) = mpsc::channel();
        std::thread::Builder::new()
            .name("ratings-journal".into())
            .spawn(move || write_loop(file, &waiting))
            .context("starting the journal writer")?;
        Ok(Self { appends })
    }

    /// Appends `event` and returns once it is on disk.
    ///
    /// # Errors
    /// The write or the sync failed (e.g. a full disk): the rating must not be acknowledged.
    pub async fn append(&self, event: &RatingSubmitted) -> std::io::Result<()> {
        let mut line = encode(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let (done, synced) = oneshot::channel();
        self.appends.send((line, done)).map_err(|_| std::io::Error::other("the journal writer stopped"))?;
        synced.await.map_err(|_| std::io::Error::other("the journal writer stopped"))?
    }
}

/// Writes every waiting line, syncs once, answers them all; until every [`Journal`] is dropped.
fn write_loop(mut file: File, waiting: &mpsc::Receiver<(Vec<u8>, oneshot::Sender<std::io::Result<()>>)>) {
    while let Ok(first) = waiting.recv() {
        let mut batch = vec![first];
        batch.extend(waiting.try_iter());
        let mut written = Ok(());
        for (line, _) in &batch {
            written = written.and_then(|()| file.write_all(line));
        }
        let result = written.and_then(|()| file.sync_data());
        for (_, done) in batch {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
        }
    }
}

/// What [`recover`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Journalled events already in the store (dropped from the journal).
    pub persisted: usize,
    /// Events produced again because the store did not hold them (kept in the journal).
    pub produced: usize,
}

/// Produces again to `topic` every journalled event the store does not hold (no rating for
/// its user and movie at least as new), then rewrites the journal with only those. A line
/// that does not decode (a write torn by the crash, never acknowledged) is dropped.
///
/// # Errors
/// The journal cannot be read or rewritten, the store cannot be read, or the broker refuses
/// an event.
pub async fn recover(path: &Path, store: &Store, producer: &FutureProducer, topic: &str) -> anyhow::Result<Recovered> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Recovered::default()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let now = unix_now();
    let mut events = Vec::new();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        match decode_at::<RatingSubmitted>(&line, now) {
            Ok(event) => events.push(event),
            Err(error) if !line.is_empty() => tracing::warn!(%error, "dropping a torn journal line"),
            Err(_) => {}
        }
    }
    let mut recovered = Recovered::default();
    let mut pending = Vec::new();
    for event in events {
        let stored = store.rating(event.user_id, event.movie_id).await?;
        if stored.is_some_and(|r| r.timestamp >= event.timestamp) {
            recovered.persisted += 1;
        } else {
            producer::send_rating(producer, topic, &event)
                .await
                .with_context(|| format!("producing journalled event {} again", event.event_id))?;
            recovered.produced += 1;
            pending.push(event);
        }
    }
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    {
        let mut out = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        for event in &pending {
            out.write_all(&encode(event)?)?;
            out.write_all(b"\n")?;
        }
        out.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appended_events_are_on_disk_one_line_each_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ratings.journal");
        let journal = Journal::open(&path).unwrap();
        let events: Vec<RatingSubmitted> =
            (1..=20).map(|u| RatingSubmitted::new(u, 1, 4.0, 1_600_000_000 + u)).collect();
        futures::future::try_join_all(events.iter().map(|e| journal.append(e))).await.unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 20);
        // A crash mid-write leaves half a line: it was never acknowledged, so it is skipped.
        fs::write(&path, format!("{text}{{\"schemaVersion\":1,\"eventId\"")).unwrap();
        let now = unix_now();
        let decoded: Vec<RatingSubmitted> =
            fs::read(&path).unwrap().split(|&b| b == b'\n').filter_map(|l| decode_at(l, now).ok()).collect();
        assert_eq!(decoded, events);
    }
}
