//! Bring your own dfdx network: a dfdx module as a VJP-capable component over flat slices.
//!
//! [`DfdxComponent`] wraps any dfdx module mapping `[batch, I] → [batch, O]` (compile-time
//! widths, runtime batch: `Tensor<(usize, Const<I>), f64, Cpu>`), exposes its parameters as one
//! flat vector in dfdx's visiting order (so they can sit in the shared parameter vector next to
//! mechanistic ones), and provides `forward` and `vjp` (dfdx's own reverse mode).
//!
//! Why not a [`CustomOp`](neurohybrid_autodiff::CustomOp): a custom op must also provide an
//! exact JVP, and dfdx has no forward mode. Rather than a silently approximate JVP (finite
//! differences), the adaptor is a separate, VJP-only component type; [`DfdxComponent::jvp`]
//! returns [`NnError::Dfdx`] so a caller that needs forward sensitivities learns it at once.
//! Users who need JVPs rebuild the network as an [`Mlp`](crate::Mlp), which records into the
//! tape with all three sweeps. Every call re-traces the network (dfdx is define-by-run), so the
//! adaptor is for interoperability, not for the hot loop.

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorRef,
};
use dfdx::prelude::*;

use crate::error::{NnError, Result, check_len};

/// A dfdx module `[batch, I] → [batch, O]` on the CPU, with flat parameters.
pub struct DfdxComponent<M, const I: usize, const O: usize> {
    dev: Cpu,
    model: M,
    n_params: usize,
}

type In<const I: usize, T> = Tensor<(usize, Const<I>), f64, Cpu, T>;
type Out<const O: usize, T> = Tensor<(usize, Const<O>), f64, Cpu, T>;

impl<M, const I: usize, const O: usize> DfdxComponent<M, I, O>
where
    M: TensorCollection<f64, Cpu>
        + Module<In<I, NoneTape>, Output = Out<O, NoneTape>>
        + Module<In<I, OwnedTape<f64, Cpu>>, Output = Out<O, OwnedTape<f64, Cpu>>>,
{
    /// Wraps `model` (built on `dev`, e.g. `dev.build_module::<Arch, f64>()`).
    pub fn new(dev: Cpu, model: M) -> Self {
        let n_params = model.num_trainable_params();
        DfdxComponent { dev, model, n_params }
    }

    /// The wrapped module.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// Number of trainable parameters.
    pub fn n_params(&self) -> usize {
        self.n_params
    }

    /// The parameters, flat, in dfdx's visiting order (for `Linear`: weight `[O, I]` then
    /// bias).
    pub fn params(&self) -> Vec<f64> {
        let mut v = Flatten { out: Vec::with_capacity(self.n_params), grads: None };
        M::iter_tensors(&mut RecursiveWalker { m: &self.model, f: &mut v })
            .expect("reading CPU tensors cannot fail");
        v.out
    }

    /// Overwrites the parameters from a flat vector in [`params`](Self::params)' order.
    pub fn set_params(&mut self, p: &[f64]) -> Result<()> {
        check_len("dfdx parameters", self.n_params, p.len())?;
        let mut v = Fill { src: p, at: 0 };
        M::iter_tensors(&mut RecursiveWalker { m: &mut self.model, f: &mut v })
            .map_err(|e| NnError::Dfdx { message: format!("{e:?}") })?;
        Ok(())
    }

    fn input<T: Tape<f64, Cpu>>(&self, x: &[f64], batch: usize, tape: T) -> Result<In<I, T>> {
        check_len("dfdx input", batch * I, x.len())?;
        let t: In<I, NoneTape> = self.dev.tensor_from_vec(x.to_vec(), (batch, Const::<I>));
        Ok(t.put_tape(tape))
    }

    /// `out = model(x)` for `x` of shape `[batch, I]` (flat) into `out` `[batch, O]`.
    pub fn forward(&self, x: &[f64], batch: usize, out: &mut [f64]) -> Result<()> {
        check_len("dfdx output", batch * O, out.len())?;
        let xt = self.input(x, batch, NoneTape)?;
        let y =
            self.model.try_forward(xt).map_err(|e| NnError::Dfdx { message: format!("{e:?}") })?;
        out.copy_from_slice(&y.as_vec());
        Ok(())
    }

    /// `w_x = wᵀ ∂y/∂x` and `w_p = wᵀ ∂y/∂p` (overwritten; an empty slot is skipped), by
    /// dfdx's reverse mode on a traced forward pass.
    pub fn vjp(
        &self,
        x: &[f64],
        batch: usize,
        w: &[f64],
        w_x: &mut [f64],
        w_p: &mut [f64],
    ) -> Result<()> {
        check_len("dfdx cotangent", batch * O, w.len())?;
        if !w_x.is_empty() {
            check_len("dfdx input cotangent", batch * I, w_x.len())?;
        }
        if !w_p.is_empty() {
            check_len("dfdx parameter cotangent", self.n_params, w_p.len())?;
        }
        // A leaky gradient set keeps every gradient, the input's included (`alloc_grads` would
        // mark only the parameters as leaves and drop the input's). Pre-allocating one (zero)
        // gradient per parameter means none is missing when read back, even for a parameter
        // the forward pass does not touch.
        let x0: In<I, NoneTape> = self.dev.tensor_from_vec(x.to_vec(), (batch, Const::<I>));
        let mut grads = Gradients::leaky();
        let dfdx_err = |e: <Cpu as HasErr>::Err| NnError::Dfdx { message: format!("{e:?}") };
        grads.try_alloc_for(&x0).map_err(dfdx_err)?;
        M::iter_tensors(&mut RecursiveWalker { m: &self.model, f: &mut AllocGrads(&mut grads) })
            .map_err(dfdx_err)?;
        let y = self
            .model
            .try_forward(x0.trace(grads))
            .map_err(|e| NnError::Dfdx { message: format!("{e:?}") })?;
        let wt: Out<O, NoneTape> = self.dev.tensor_from_vec(w.to_vec(), (batch, Const::<O>));
        let grads = (y * wt).sum().backward();
        if !w_x.is_empty() {
            w_x.copy_from_slice(&grads.get(&x0).as_vec());
        }
        if !w_p.is_empty() {
            let mut v = Flatten { out: Vec::with_capacity(self.n_params), grads: Some(&grads) };
            M::iter_tensors(&mut RecursiveWalker { m: &self.model, f: &mut v })
                .expect("reading CPU tensors cannot fail");
            w_p.copy_from_slice(&v.out);
        }
        Ok(())
    }

    /// Always [`NnError::Dfdx`]: dfdx has no forward mode, and this adaptor does not pretend
    /// to have one (see the module documentation).
    pub fn jvp(
        &self,
        _x: &[f64],
        _batch: usize,
        _v_x: &[f64],
        _v_p: &[f64],
        _out: &mut [f64],
    ) -> Result<()> {
        Err(NnError::Dfdx {
            message: "JVP unsupported: dfdx has no forward mode; use neurohybrid_nn::Mlp for forward sensitivities".into(),
        })
    }
}

/// Appends every trainable tensor (or its gradient) to `out`.
struct Flatten<'g> {
    out: Vec<f64>,
    grads: Option<&'g Gradients<f64, Cpu>>,
}

impl TensorVisitor<f64, Cpu> for Flatten<'_> {
    type Viewer = ViewTensorRef;
    type Err = <Cpu as HasErr>::Err;
    type E2 = f64;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f64, Cpu>,
        t: &Tensor<S, f64, Cpu>,
    ) -> std::result::Result<Option<Tensor<S, f64, Cpu>>, Self::Err> {
        if opts.do_gradient_update {
            match self.grads {
                Some(g) => self.out.extend(g.get(t).as_vec()),
                None => self.out.extend(t.as_vec()),
            }
        }
        Ok(None)
    }
}

/// Allocates a (zero) gradient for every trainable tensor.
struct AllocGrads<'g>(&'g mut Gradients<f64, Cpu>);

impl TensorVisitor<f64, Cpu> for AllocGrads<'_> {
    type Viewer = ViewTensorRef;
    type Err = <Cpu as HasErr>::Err;
    type E2 = f64;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f64, Cpu>,
        t: &Tensor<S, f64, Cpu>,
    ) -> std::result::Result<Option<Tensor<S, f64, Cpu>>, Self::Err> {
        if opts.do_gradient_update {
            self.0.try_alloc_for(t)?;
        }
        Ok(None)
    }
}

/// Copies consecutive chunks of `src` into the trainable tensors.
struct Fill<'a> {
    src: &'a [f64],
    at: usize,
}

impl TensorVisitor<f64, Cpu> for Fill<'_> {
    type Viewer = ViewTensorMut;
    type Err = <Cpu as HasErr>::Err;
    type E2 = f64;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, f64, Cpu>,
        t: &mut Tensor<S, f64, Cpu>,
    ) -> std::result::Result<Option<Tensor<S, f64, Cpu>>, Self::Err> {
        if opts.do_gradient_update {
            let n = t.shape().num_elements();
            t.copy_from(&self.src[self.at..self.at + n]);
            self.at += n;
        }
        Ok(None)
    }
}
