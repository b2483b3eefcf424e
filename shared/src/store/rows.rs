//! The rows of a read of many rows ([`super::Pool::rows`]), from either driver, read by column
//! position: a SQLite file's come straight from sqlx's SQLite driver, every other backend's
//! through `Any`. The bulk paths (day files, comparisons) read a million rows this way; the
//! rest of the store reads `AnyRow`s by name.

use sqlx::any::AnyRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column as _, ColumnIndex, Decode, Row, Type};

/// The rows a read returned, in order.
pub enum Rows {
    /// Through `Any` (PostgreSQL, `sqlite::memory:`).
    Any(Vec<AnyRow>),
    /// From a SQLite file's own driver.
    Sqlite(Vec<SqliteRow>),
}

impl Rows {
    /// Each row turned into a `T` by `f`, in order; the first error stops it.
    pub fn map<T>(
        &self,
        mut f: impl FnMut(&dyn Columns) -> anyhow::Result<T>,
    ) -> anyhow::Result<Vec<T>> {
        match self {
            Rows::Any(rows) => rows.iter().map(|r| f(r)).collect(),
            Rows::Sqlite(rows) => rows.iter().map(|r| f(r)).collect(),
        }
    }
}

/// A row's values by position (from 0, in the order the statement selects them). An error
/// names the column.
pub trait Columns {
    /// Text that is not NULL.
    fn text(&self, i: usize) -> anyhow::Result<&str>;
    /// Text, or NULL.
    fn opt_text(&self, i: usize) -> anyhow::Result<Option<&str>>;
    /// An integer that is not NULL.
    fn int(&self, i: usize) -> anyhow::Result<i64>;
    /// An integer, or NULL.
    fn opt_int(&self, i: usize) -> anyhow::Result<Option<i64>>;
}

impl<R> Columns for R
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> &'r str: Decode<'r, R::Database> + Type<R::Database>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, i: usize) -> anyhow::Result<&str> {
        self.try_get(i).map_err(|e| column_error(self, i, e))
    }

    fn opt_text(&self, i: usize) -> anyhow::Result<Option<&str>> {
        self.try_get(i).map_err(|e| column_error(self, i, e))
    }

    fn int(&self, i: usize) -> anyhow::Result<i64> {
        self.try_get(i).map_err(|e| column_error(self, i, e))
    }

    fn opt_int(&self, i: usize) -> anyhow::Result<Option<i64>> {
        self.try_get(i).map_err(|e| column_error(self, i, e))
    }
}

/// Column `i` of `row` could not be read as asked.
fn column_error<R: Row>(row: &R, i: usize, e: sqlx::Error) -> anyhow::Error {
    let name = row.columns().get(i).map_or("?", |c| c.name());
    anyhow::anyhow!("column {i} ({name}): {e}")
}
