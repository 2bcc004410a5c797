//! The channel map: a `dict` (fast path) or any mapping with `items()` and `get()`.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub(crate) enum Map<'py> {
    Dict(Bound<'py, PyDict>),
    Other(Bound<'py, PyAny>),
}

impl<'py> Map<'py> {
    pub(crate) fn new(map: &Bound<'py, PyAny>) -> Map<'py> {
        match map.downcast::<PyDict>() {
            Ok(d) => Map::Dict(d.clone()),
            Err(_) => Map::Other(map.clone()),
        }
    }

    /// `bool(map)`: the loop runs while it is true.
    pub(crate) fn is_truthy(&self) -> PyResult<bool> {
        match self {
            Map::Dict(d) => Ok(!d.is_empty()),
            Map::Other(m) => m.is_truthy(),
        }
    }

    pub(crate) fn len(&self) -> PyResult<usize> {
        match self {
            Map::Dict(d) => Ok(d.len()),
            Map::Other(m) => m.len(),
        }
    }

    /// `list(map.items())`: a snapshot, so handlers may change the map.
    pub(crate) fn items(
        &self,
        out: &mut Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    ) -> PyResult<()> {
        out.clear();
        match self {
            // No Python code runs while the dict is walked, so it cannot change under us.
            Map::Dict(d) => out.extend(d.iter()),
            Map::Other(m) => {
                for item in m.call_method0(intern!(m.py(), "items"))?.try_iter()? {
                    out.push(item?.extract()?);
                }
            }
        }
        Ok(())
    }

    /// `map.get(key)`.
    pub(crate) fn get(&self, key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self {
            Map::Dict(d) => d.get_item(key),
            Map::Other(m) => {
                let v = m.call_method1(intern!(m.py(), "get"), (key,))?;
                Ok(if v.is_none() { None } else { Some(v) })
            }
        }
    }

    /// True if `map.get(key) is obj`: the object an event was meant for is still there.
    pub(crate) fn holds(&self, key: &Bound<'py, PyAny>, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        Ok(self.get(key)?.is_some_and(|cur| cur.is(obj)))
    }
}
