//! A state sync's answers, gathered before the state is built from them ([`Db::restore`]).
//!
//! A follower fetches every answer first (each checked where it arrives) and builds the state
//! after, so the answers add up to about the size of the source's live operations: hundreds of
//! MiB for a million accounts. They wait in a file beside the database, appended as they
//! arrive; memory holds only each request and where its answer lies. The file is removed when
//! the answers are dropped, and emptied by the next restore's if a crash left it.

use crate::{Db, DbError, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;

/// Answers to [`crate::qmdb::requests`], on disk until a restore takes them.
#[derive(Debug)]
pub struct Answers {
    path: PathBuf,
    file: File,
    /// Each request's answer: its offset in the file and its length.
    at: BTreeMap<Vec<u8>, (u64, usize)>,
    end: u64,
}

impl Answers {
    /// No answers yet, in a file beside `db` (emptied if it exists).
    pub fn new(db: &Db) -> Result<Answers> {
        let path = db.commitment_dir.with_extension("answers");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(io)?;
        Ok(Answers {
            path,
            file,
            at: BTreeMap::new(),
            end: 0,
        })
    }

    /// Keeps `answer` as the answer to `request` (replacing an earlier one).
    pub fn insert(&mut self, request: Vec<u8>, answer: &[u8]) -> Result<()> {
        self.file.seek(SeekFrom::Start(self.end)).map_err(io)?;
        self.file.write_all(answer).map_err(io)?;
        self.at.insert(request, (self.end, answer.len()));
        self.end += u64::try_from(answer.len()).expect("a length");
        Ok(())
    }

    /// How many requests have an answer.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether no request has an answer.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Takes the answer to `request` out, if there is one.
    pub fn take(&mut self, request: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some((offset, len)) = self.at.remove(request) else {
            return Ok(None);
        };
        let mut answer = vec![0; len];
        self.file.seek(SeekFrom::Start(offset)).map_err(io)?;
        self.file.read_exact(&mut answer).map_err(io)?;
        Ok(Some(answer))
    }
}

impl Drop for Answers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn io(e: std::io::Error) -> DbError {
    DbError::File(format!("the state sync's answers file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_wait_on_disk_and_come_back_as_they_were_given_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("state.redb")).unwrap();
        let mut answers = Answers::new(&db).unwrap();
        let given: Vec<(Vec<u8>, Vec<u8>)> = (0u8..20)
            .map(|i| (vec![i; 3], vec![i; 1 + usize::from(i) * 100]))
            .collect();
        for (request, answer) in &given {
            answers.insert(request.clone(), answer).unwrap();
        }
        let path = db.commitment_dir.with_extension("answers");
        let on_disk = std::fs::metadata(&path).unwrap().len();
        let total: usize = given.iter().map(|(_, a)| a.len()).sum();
        assert_eq!(
            on_disk,
            u64::try_from(total).unwrap(),
            "the answers are on disk"
        );
        assert_eq!(answers.len(), 20);
        // Taken in another order than given, each is what was given, and only once.
        for (request, answer) in given.iter().rev() {
            assert_eq!(answers.take(request).unwrap().as_ref(), Some(answer));
            assert_eq!(answers.take(request).unwrap(), None);
        }
        assert!(answers.is_empty());
        assert_eq!(answers.take(b"never asked").unwrap(), None);
        drop(answers);
        assert!(!path.exists(), "the file goes with the answers");
    }
}
