//! Tensors as PyTorch stores them: a view (element offset, sizes, element strides) into a
//! storage's bytes. The view is checked to lie inside the storage before any byte is read.

use candle_core::{DType, Device, Tensor};

/// A view of `dtype` elements into a storage; offset and strides count elements, not bytes
/// (as in `torch._utils._rebuild_tensor_v2`).
pub struct View<'a> {
    pub dtype: DType,
    pub offset: usize,
    pub size: &'a [usize],
    pub stride: &'a [usize],
}

impl View<'_> {
    /// Number of elements of the view.
    pub fn elem_count(&self) -> Option<usize> {
        self.size.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Checks the view against a storage of `storage_len` elements: the last element it reaches
    /// (offset + sum of (size - 1) * stride) must lie inside, computed without overflow.
    pub fn check(&self, storage_len: usize) -> Result<(), String> {
        let count = self.elem_count().ok_or("its shape overflows")?;
        if count == 0 {
            return Ok(());
        }
        let last = self
            .size
            .iter()
            .zip(self.stride)
            .try_fold(self.offset, |a, (&n, &s)| (n - 1).checked_mul(s).and_then(|d| a.checked_add(d)));
        match last {
            Some(last) if last < storage_len => Ok(()),
            _ => Err(format!(
                "view (offset {}, size {:?}, stride {:?}) reaches past its storage of {storage_len} elements",
                self.offset, self.size, self.stride
            )),
        }
    }

    fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&n, &s) in self.size.iter().zip(self.stride).rev() {
            if n != 1 && s != expected {
                return false;
            }
            expected = expected.saturating_mul(n);
        }
        true
    }

    /// The view's elements as a contiguous CPU tensor. Call [`View::check`] first.
    pub fn materialize(&self, storage: &[u8]) -> Result<Tensor, String> {
        let e = self.dtype.size_in_bytes();
        let count = self.elem_count().ok_or("its shape overflows")?;
        let tensor = |bytes: &[u8]| {
            Tensor::from_raw_buffer(bytes, self.dtype, self.size, &Device::Cpu).map_err(|e| e.to_string())
        };
        if count == 0 {
            return tensor(&[]);
        }
        if self.is_contiguous() {
            return tensor(&storage[self.offset * e..(self.offset + count) * e]);
        }
        let mut out = Vec::new();
        out.try_reserve_exact(count * e).map_err(|_| format!("cannot allocate {} bytes", count * e))?;
        // Odometer over the multi-index; `pos` is the element position in the storage. Carrying
        // past a dimension's end may step outside the storage (a size-1 dimension can have any
        // stride), so `pos` wraps; it is back inside whenever an element is read.
        let mut index = vec![0usize; self.size.len()];
        let mut pos = self.offset;
        for _ in 0..count {
            out.extend_from_slice(&storage[pos * e..(pos + 1) * e]);
            for d in (0..index.len()).rev() {
                index[d] += 1;
                pos = pos.wrapping_add(self.stride[d]);
                if index[d] < self.size[d] {
                    break;
                }
                pos = pos.wrapping_sub(self.stride[d].wrapping_mul(self.size[d]));
                index[d] = 0;
            }
        }
        tensor(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> Vec<u8> {
        (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect()
    }

    #[test]
    fn offsets_and_strides_count_elements() {
        let v = View { dtype: DType::F32, offset: 5, size: &[3, 2], stride: &[1, 3] };
        v.check(12).unwrap();
        let t = v.materialize(&storage()).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), [[5., 8.], [6., 9.], [7., 10.]]);
        let v = View { dtype: DType::F32, offset: 2, size: &[2, 2], stride: &[2, 1] };
        assert_eq!(v.materialize(&storage()).unwrap().to_vec2::<f32>().unwrap(), [[2., 3.], [4., 5.]]);
        // A size-1 dimension with a huge stride, in a non-contiguous view.
        let v = View { dtype: DType::F32, offset: 1, size: &[2, 1, 2], stride: &[1, usize::MAX, 4] };
        v.check(12).unwrap();
        assert_eq!(
            v.materialize(&storage()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1., 5., 2., 6.]
        );
    }

    #[test]
    fn views_outside_the_storage_are_refused() {
        let v = View { dtype: DType::F32, offset: 7, size: &[3, 2], stride: &[1, 3] };
        assert!(v.check(12).unwrap_err().contains("reaches past its storage of 12 elements"));
        let v = View { dtype: DType::F32, offset: 0, size: &[2, usize::MAX / 2], stride: &[usize::MAX, 1] };
        assert!(v.check(12).is_err());
        let v = View { dtype: DType::F32, offset: usize::MAX, size: &[0], stride: &[1] };
        v.check(12).unwrap();
        assert_eq!(v.materialize(&[]).unwrap().dims(), [0]);
    }
}
