//! One ONNX Runtime session over a CLIP-style vision model: a batch of normalised
//! pixels in, embeddings, class-token attention and per-layer class-token states out,
//! all from the same forward pass.
//!
//! Every run goes through an I/O binding that names only the outputs clipshift reads,
//! so ONNX Runtime neither copies nor keeps the others (such as the last hidden state).
//! The input is a tensor that ONNX Runtime allocated (binding a borrowed tensor deadlocks
//! in ort 2.0.0-rc.15), taken from the encoder's [`InputPool`]: the encode stage's
//! producer writes each batch straight into one and hands it to the inference loop, which
//! runs it and gives it back, so no batch is copied on the loop's thread. Under CUDA the
//! pool's tensors and the outputs live in pinned (page-locked) host memory, so both
//! transfers are direct DMA copies without a staging buffer; on CPU the same code runs
//! with plain host memory, which is what the tests exercise.

use std::sync::{Arc, Mutex};

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{IoBinding, Session};
use ort::value::Tensor;

use crate::runtime::environment;
use crate::{Device, EncodeError, ModelSpec};

/// Session options. The defaults suit a CPU run: every core for ONNX Runtime's
/// intra-op pool and all graph optimisations.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    pub device: Device,
    /// Intra-op threads; `None` or 0 (ONNX Runtime's "default"): one per CPU this
    /// process may run on ([`SessionConfig::threads`]).
    pub intra_threads: Option<usize>,
    /// Graph optimisation level 0 (none) to 3 (all); `None` means all.
    pub optimization_level: Option<u8>,
}

impl SessionConfig {
    /// The intra-op threads a session gets: as asked, else (`None` or 0) one per CPU this
    /// process may run on (its affinity mask and cgroup quota, as a Slurm or Kubernetes job sets
    /// them). ONNX Runtime's own default is one thread per physical core of the whole
    /// machine, whatever the affinity mask (under `taskset -c 0` on a two-core machine it
    /// starts two): on a node shared by jobs, dozens of spinning threads on a job's few CPUs.
    pub fn threads(&self) -> usize {
        self.intra_threads
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

/// The outputs of one batch, flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutput {
    pub batch: usize,
    pub embedding_dim: usize,
    /// `batch x embedding_dim`, projected and not normalised.
    pub embeddings: Vec<f32>,
    /// `batch x patches`: last-layer attention from the class token to each patch, mean over heads.
    pub cls_attention: Option<Vec<f32>>,
    pub patches: usize,
    /// `batch x layers x hidden`: class-token state after the embeddings and each layer.
    pub layer_cls_states: Option<Vec<f32>>,
    pub layers: usize,
    pub hidden: usize,
}

/// A loaded model ready to encode batches.
#[derive(Debug)]
pub struct Encoder {
    session: Session,
    binding: IoBinding,
    inputs: Arc<InputPool>,
    /// The outputs read, and the host memory ONNX Runtime writes them to.
    outputs: Vec<String>,
    output_memory: MemoryInfo<'static>,
    spec: ModelSpec,
    provider: &'static str,
    fallback: Option<String>,
    read_attention: bool,
    read_layers: bool,
}

impl Encoder {
    pub fn new(spec: ModelSpec, config: &SessionConfig) -> Result<Self, EncodeError> {
        let OpenSession { session, provider, fallback } = open_session(&spec.onnx_path(), &spec.sha256, config)?;
        check_contract(&session, &spec)?;
        let read_attention = spec.outputs.last_attention.is_some();
        let read_layers = spec.outputs.layer_cls_states.is_some();

        let bind = |e: ort::Error| EncodeError::runtime("I/O binding", e);
        let binding = session.create_binding().map_err(bind)?;
        let read = [
            Some(&spec.outputs.image_embeds),
            spec.outputs.last_attention.as_ref(),
            spec.outputs.layer_cls_states.as_ref(),
        ];
        let outputs = read
            .into_iter()
            .zip([true, read_attention, read_layers])
            .filter_map(|(name, wanted)| name.filter(|_| wanted).cloned())
            .collect();
        let (allocator, output_memory) = host_memory(&session, provider).map_err(bind)?;
        let side = spec.image_size as usize;
        let inputs = Arc::new(InputPool { allocator: Mutex::new(allocator), free: Mutex::new(Vec::new()), side });
        Ok(Self {
            session,
            binding,
            inputs,
            outputs,
            output_memory,
            spec,
            provider,
            fallback,
            read_attention,
            read_layers,
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The execution provider in use: `cpu` or `cuda`.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Why CUDA was asked for but not used, if it was.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    pub fn has_attention(&self) -> bool {
        self.read_attention
    }

    /// The pool the model's input tensors come from, for a thread that prepares batches.
    pub fn input_pool(&self) -> Arc<InputPool> {
        Arc::clone(&self.inputs)
    }

    /// Encodes `batch` images given as normalised CHW floats, back to back (copied into
    /// a tensor of the pool).
    pub fn encode(&mut self, pixels: &[f32], batch: usize) -> Result<BatchOutput, EncodeError> {
        let s = self.spec.image_size as usize;
        if batch == 0 || pixels.len() != batch * 3 * s * s {
            return Err(EncodeError::runtime(
                "input",
                format!("{} floats is not a batch of {batch} x 3 x {s} x {s}", pixels.len()),
            ));
        }
        let mut input = self.inputs.take(batch)?;
        input.extract_tensor_mut().1.copy_from_slice(pixels);
        let output = self.encode_tensor(&input);
        self.inputs.give_back(input);
        output
    }

    /// Encodes the batch in `input`, a tensor of [`Encoder::input_pool`] holding
    /// `[batch, 3, side, side]` normalised pixels.
    pub fn encode_tensor(&mut self, input: &Tensor<f32>) -> Result<BatchOutput, EncodeError> {
        let s = self.spec.image_size as i64;
        let batch = match **input.shape() {
            [n, 3, h, w] if n > 0 && h == s && w == s => n as usize,
            ref shape => return Err(EncodeError::runtime("input", format!("shape {shape:?} is not [N, 3, {s}, {s}]"))),
        };
        let input_error = |e: ort::Error| EncodeError::runtime("input tensor", e);
        self.binding.bind_input("pixel_values", input).map_err(input_error)?;
        // Bound afresh every run: a bound output keeps its last shape, and the batch may change.
        self.binding.clear_outputs();
        for name in &self.outputs {
            self.binding
                .bind_output_to_device(name.as_str(), &self.output_memory)
                .map_err(|e| EncodeError::runtime("I/O binding", e))?;
        }
        let outputs = self.session.run_binding(&self.binding).map_err(|e| EncodeError::runtime("inference", e))?;
        let out = &self.spec.outputs;

        let (shape, embeds) = extract(&outputs, &out.image_embeds)?;
        if shape.len() != 2 || shape[0] as usize != batch {
            return Err(EncodeError::Output {
                name: out.image_embeds.clone(),
                message: format!("shape {shape:?}, expected [{batch}, D]"),
            });
        }
        let embedding_dim = shape[1] as usize;
        let grid = self.spec.grid();
        let mut result = BatchOutput {
            batch,
            embedding_dim,
            embeddings: embeds.to_vec(),
            cls_attention: None,
            patches: grid * grid,
            layer_cls_states: None,
            layers: 0,
            hidden: 0,
        };
        if self.read_attention {
            let name = out.last_attention.as_deref().expect("checked at load");
            let (shape, attention) = extract(&outputs, name)?;
            result.cls_attention = Some(class_token_attention(name, &shape, attention, batch, grid * grid)?);
        }
        if self.read_layers {
            let name = out.layer_cls_states.as_deref().expect("checked at load");
            let (shape, states) = extract(&outputs, name)?;
            if shape.len() != 3 || shape[0] as usize != batch {
                return Err(EncodeError::Output {
                    name: name.into(),
                    message: format!("shape {shape:?}, expected [{batch}, L, H]"),
                });
            }
            result.layers = shape[1] as usize;
            result.hidden = shape[2] as usize;
            result.layer_cls_states = Some(states.to_vec());
        }
        Ok(result)
    }
}

/// A session on `path` with `config`'s options and execution provider.
pub(crate) struct OpenSession {
    pub(crate) session: Session,
    pub(crate) provider: &'static str,
    /// Why CUDA was asked for and the CPU runs, if so.
    pub(crate) fallback: Option<String>,
}

/// A session on `path` (whose sha256 the sidecar records as `sha256`) with `config`'s
/// options and execution provider. The file is hashed on another thread while the
/// session is built: both take about a second for a ViT-B/32, and building is mostly
/// one thread. A file that does not match is refused before any session is used.
pub(crate) fn open_session(
    path: &std::path::Path,
    sha256: &str,
    config: &SessionConfig,
) -> Result<OpenSession, EncodeError> {
    std::thread::scope(|scope| {
        let check = scope.spawn(|| crate::model::check_sha256(path, sha256));
        let opened = build_session(path, config);
        check.join().expect("the sha256 thread panicked")?;
        opened
    })
}

fn build_session(path: &std::path::Path, config: &SessionConfig) -> Result<OpenSession, EncodeError> {
    let env = environment()?;
    let level = match config.optimization_level.unwrap_or(3) {
        0 => GraphOptimizationLevel::Disable,
        1 => GraphOptimizationLevel::Level1,
        2 => GraphOptimizationLevel::Level2,
        _ => GraphOptimizationLevel::All,
    };
    let mut builder = Session::builder(env)
        .map_err(|e| EncodeError::runtime("session builder", e))?
        .with_optimization_level(level)
        .map_err(|e| EncodeError::runtime("optimisation level", e))?;
    builder = builder.with_intra_threads(config.threads()).map_err(|e| EncodeError::runtime("intra-op threads", e))?;
    let (mut builder, provider, fallback) = select_provider(builder, config.device)?;
    let session = builder
        .commit_from_file(path)
        .map_err(|e| EncodeError::Model { path: path.to_path_buf(), message: e.to_string() })?;
    Ok(OpenSession { session, provider, fallback })
}

pub(crate) fn extract<'a>(
    outputs: &'a ort::session::SessionOutputs<'_>,
    name: &str,
) -> Result<(Vec<i64>, &'a [f32]), EncodeError> {
    let value = outputs
        .get(name)
        .ok_or_else(|| EncodeError::Output { name: name.into(), message: "missing from the run's outputs".into() })?;
    let (shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| EncodeError::Output { name: name.into(), message: e.to_string() })?;
    Ok((shape.to_vec(), data))
}

/// Checks the graph against the model contract and its sidecar before any work starts:
/// the `pixel_values` input (f32, [N, 3, S, S] with S the sidecar's `image_size`) and every
/// output the sidecar names (f32, of the contract's rank; `image_embeds` of width
/// `embedding_dim`). A dimension the graph leaves dynamic (-1) is checked at run time.
fn check_contract(session: &Session, spec: &ModelSpec) -> Result<(), EncodeError> {
    let bad = |message: String| Err(EncodeError::Model { path: spec.onnx_path(), message });
    let size = i64::from(spec.image_size);
    let dims_match = |dims: &[i64], want: &[Option<i64>]| {
        dims.len() == want.len() && dims.iter().zip(want).all(|(d, w)| *d < 0 || w.is_none_or(|w| *d == w))
    };
    let f32_shape = |outlet: &ort::value::Outlet| match outlet.dtype() {
        ort::value::ValueType::Tensor { ty: ort::value::TensorElementType::Float32, shape, .. } => Some(shape.to_vec()),
        _ => None,
    };
    let Some(input) = session.inputs().iter().find(|i| i.name() == "pixel_values") else {
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        return bad(format!("the graph has no input `pixel_values` (it has {names:?})"));
    };
    match f32_shape(input) {
        Some(dims) if dims_match(&dims, &[None, Some(3), Some(size), Some(size)]) => {}
        other => {
            return bad(format!(
                "input `pixel_values` is {other:?}, the contract wants float32 [N, 3, {size}, {size}]"
            ));
        }
    }
    let width = i64::try_from(spec.embedding_dim).unwrap_or(-1);
    let declared = [
        (Some(&spec.outputs.image_embeds), vec![None, Some(width)], "[N, embedding_dim]"),
        (spec.outputs.last_attention.as_ref(), vec![None; 4], "[N, heads, 1 or T, T]"),
        (spec.outputs.layer_cls_states.as_ref(), vec![None; 3], "[N, L+1, hidden]"),
    ];
    for (name, want, contract) in declared {
        let Some(name) = name else { continue };
        let Some(output) = session.outputs().iter().find(|o| o.name() == name) else {
            return bad(format!("the sidecar names output `{name}`, which the graph does not have"));
        };
        match f32_shape(output) {
            Some(dims) if dims_match(&dims, &want) => {}
            other => return bad(format!("output `{name}` is {other:?}, the contract wants float32 {contract}")),
        }
    }
    Ok(())
}

/// Mean over heads of `attention[n, h, 0, 1..]` for `attention` of shape [N, H, Q, T]:
/// Q = T for a graph that returns every query's row, Q = 1 for one that computes the
/// class token's row alone (what `export_clip.py` writes).
fn class_token_attention(
    name: &str,
    shape: &[i64],
    attention: &[f32],
    batch: usize,
    patches: usize,
) -> Result<Vec<f32>, EncodeError> {
    let tokens = patches + 1;
    let queries = shape.get(2).map(|&q| q as usize);
    if shape.len() != 4
        || shape[0] as usize != batch
        || !matches!(queries, Some(q) if q == 1 || q == tokens)
        || shape[3] as usize != tokens
    {
        return Err(EncodeError::Output {
            name: name.into(),
            message: format!("shape {shape:?}, expected [{batch}, heads, 1 or {tokens}, {tokens}]"),
        });
    }
    let (heads, queries) = (shape[1] as usize, shape[2] as usize);
    let mut out = vec![0.0f32; batch * patches];
    for n in 0..batch {
        let row = &mut out[n * patches..(n + 1) * patches];
        for h in 0..heads {
            let start = ((n * heads + h) * queries) * tokens + 1;
            for (acc, a) in row.iter_mut().zip(&attention[start..start + patches]) {
                *acc += a;
            }
        }
        row.iter_mut().for_each(|v| *v /= heads as f32);
    }
    Ok(out)
}

/// The allocator for the input and the memory for the outputs: pinned host memory under
/// CUDA (plain host memory, with a warning, if the runtime cannot provide it), plain host
/// memory on CPU.
fn host_memory(session: &Session, provider: &str) -> ort::Result<(Allocator, MemoryInfo<'static>)> {
    if provider == "cuda" {
        let pinned = |kind| MemoryInfo::new(AllocationDevice::CUDA_PINNED, 0, AllocatorType::Device, kind);
        match pinned(MemoryType::CPUInput).and_then(|m| Allocator::new(session, m)) {
            Ok(allocator) => return Ok((allocator, pinned(MemoryType::CPUOutput)?)),
            Err(e) => tracing::warn!("no pinned host memory for CUDA transfers, using pageable memory: {e}"),
        }
    }
    Ok((Allocator::default(), MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::CPUOutput)?))
}

/// The model's input tensors, allocated by ONNX Runtime (pinned host memory under CUDA)
/// and reused: the encode stage's producer takes one per batch and writes the pixels in
/// place, the inference loop runs it and gives it back. Shared between threads.
#[derive(Debug)]
pub struct InputPool {
    allocator: Mutex<Allocator>,
    free: Mutex<Vec<Tensor<f32>>>,
    side: usize,
}

/// Free tensors kept for reuse: the batches in flight at once (two queued, one being
/// filled, one in the model) and the odd last one.
const KEPT_INPUTS: usize = 6;

impl InputPool {
    /// A `[batch, 3, side, side]` tensor, contents unspecified: a free one of that shape
    /// or a new one.
    pub fn take(&self, batch: usize) -> Result<Tensor<f32>, EncodeError> {
        let shape = [batch as i64, 3, self.side as i64, self.side as i64];
        let mut free = self.free.lock().expect("input pool poisoned");
        if let Some(i) = free.iter().position(|t| **t.shape() == shape) {
            return Ok(free.remove(i));
        }
        drop(free);
        let allocator = self.allocator.lock().expect("input allocator poisoned");
        Tensor::new(&allocator, [batch, 3, self.side, self.side]).map_err(|e| EncodeError::runtime("input tensor", e))
    }

    /// Returns a tensor for reuse (the oldest is dropped beyond a few).
    pub fn give_back(&self, tensor: Tensor<f32>) {
        let mut free = self.free.lock().expect("input pool poisoned");
        if free.len() == KEPT_INPUTS {
            free.remove(0);
        }
        free.push(tensor);
    }
}

type Builder = ort::session::builder::SessionBuilder;

fn select_provider(builder: Builder, device: Device) -> Result<(Builder, &'static str, Option<String>), EncodeError> {
    match device {
        Device::Cpu => Ok((builder, "cpu", None)),
        Device::Auto | Device::Cuda => cuda::register(builder, device),
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use ort::ep::ExecutionProvider;

    use super::{Builder, Device, EncodeError};

    pub(super) fn register(
        builder: Builder,
        device: Device,
    ) -> Result<(Builder, &'static str, Option<String>), EncodeError> {
        match ort::ep::CUDA::is_available() {
            Ok(true) => {}
            Ok(false) => {
                return Ok((
                    builder,
                    "cpu",
                    quiet(
                        device,
                        "the loaded ONNX Runtime has no CUDA provider (use `cargo xtask fetch-runtime --gpu`)",
                    ),
                ));
            }
            Err(e) => return Ok((builder, "cpu", quiet(device, &e.to_string()))),
        }
        // ONNX Runtime turns TF32 on by default (10-bit mantissas in MatMul and Conv, about
        // 1e-3 relative error): a float32 model runs in float32 here, as on the CPU; the
        // float16 export is the fast path.
        let cuda = ort::ep::CUDA::default().with_tf32(false);
        match builder.with_execution_providers([cuda.build().error_on_failure()]) {
            Ok(b) => Ok((b, "cuda", None)),
            Err(e) => {
                let reason = format!("CUDA provider failed to register: {e}");
                Ok((e.recover(), "cpu", quiet(device, &reason)))
            }
        }
    }

    fn quiet(device: Device, reason: &str) -> Option<String> {
        (device == Device::Cuda).then(|| reason.to_string())
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use super::{Builder, Device, EncodeError};

    pub(super) fn register(
        builder: Builder,
        device: Device,
    ) -> Result<(Builder, &'static str, Option<String>), EncodeError> {
        let reason = (device == Device::Cuda)
            .then(|| "this build has no CUDA support (rebuild clipshift-encode with `--features cuda`)".to_string());
        Ok((builder, "cpu", reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_as_asked_else_one_per_cpu_of_the_process() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        let asked = |intra_threads| SessionConfig { intra_threads, ..SessionConfig::default() }.threads();
        assert_eq!(asked(Some(3)), 3);
        assert_eq!(asked(None), cpus);
        // 0 is ONNX Runtime's "default", not one thread.
        assert_eq!(asked(Some(0)), cpus);
    }

    #[test]
    fn class_token_attention_averages_heads_and_skips_the_class_column() {
        // batch 1, 2 heads, 1 + 4 tokens.
        let tokens = 5;
        let mut att = vec![0.0f32; 2 * tokens * tokens];
        att[..tokens].copy_from_slice(&[0.2, 0.1, 0.2, 0.3, 0.2]);
        att[tokens * tokens..tokens * tokens + tokens].copy_from_slice(&[0.0, 0.3, 0.0, 0.5, 0.2]);
        let out = class_token_attention("a", &[1, 2, 5, 5], &att, 1, 4).unwrap();
        let expected = [0.2, 0.1, 0.4, 0.2];
        assert!(out.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "{out:?}");
        assert!(class_token_attention("a", &[1, 2, 4, 4], &att, 1, 4).is_err());
        assert!(class_token_attention("a", &[1, 2, 2, 5], &att, 1, 4).is_err());

        // The class token's row alone, as export_clip.py's graphs return it: the same result.
        let rows: Vec<f32> = [&att[..tokens], &att[tokens * tokens..tokens * tokens + tokens]].concat();
        assert_eq!(class_token_attention("a", &[1, 2, 1, 5], &rows, 1, 4).unwrap(), out);
    }
}
