//! Writing one CSV file of a release under a temporary name, renamed into place when done.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::SyntheticError;

/// temporary name until [`CsvFile::finish`] renames it into place.
pub(super) struct CsvFile {
    path: PathBuf,
    tmp: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl CsvFile {
    pub(super) fn create(dir: &Path, name: &str, header: &[&str]) -> Result<Self, SyntheticError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.partial"));
        let file = File::create(&tmp).map_err(|source| SyntheticError::Io { path: tmp.clone(), source })?;
        let writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(BufWriter::with_capacity(1 << 20, file));
        let mut out = Self { path, tmp, writer };
        out.row(header)?;
        Ok(out)
    }

    pub(super) fn row(&mut self, row: impl serde::Serialize) -> Result<(), SyntheticError> {
        self.writer.serialize(row).map_err(|source| SyntheticError::Csv { path: self.tmp.clone(), source })
    }

    /// Flushes, renames into place, returns the file's size.
    pub(super) fn finish(mut self) -> Result<u64, SyntheticError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SyntheticError::Io { path, source }
        };
        self.writer.flush().map_err(io(&self.tmp))?;
        drop(self.writer);
        fs::rename(&self.tmp, &self.path).map_err(io(&self.path))?;
        Ok(fs::metadata(&self.path).map_err(io(&self.path))?.len())
    }
}
