//! `GET /system/df`'s container part: each container's summary with the size of its writable layer
//! (`SizeRw`) and of its whole root filesystem (`SizeRootFs`, the image's layers included).

use super::ContainerService;
use berth_api::models::ContainerSummary;

impl ContainerService {
    /// Every container with its sizes. Walks the writable layers: call it off the executor.
    pub fn disk_usage(&self) -> Vec<ContainerSummary> {
        let mut out: Vec<(String, ContainerSummary)> = self
            .registry
            .all()
            .into_iter()
            .map(|c| {
                let rec = c.record();
                let rw = self.snapshots.rw_usage(&rec.id) as i64;
                let image = self.images.resolve_now(&rec.image).map(|i| i.size as i64).unwrap_or(0);
                let mut s = self.summary(&rec);
                s.size_rw = Some(rw);
                s.size_root_fs = Some(rw + image);
                (rec.created.clone(), s)
            })
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0));
        out.into_iter().map(|(_, s)| s).collect()
    }
}
