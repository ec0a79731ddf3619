// XLA lowerings of Corrops>CorrLoss and Corrops>CorrLossGrad: inside a
// jit-compiled function TF's XLA bridge calls these with the inputs' concrete
// shapes. Each validates the shapes and eps as the TF kernels do (the same
// messages), then emits one typed-FFI custom call (corr_loss_custom_call.h)
// that runs the fused engine: on "Host" the CPU engine, on "CUDA" the CUDA
// kernels. eps must be a compile-time constant (the Python wrapper passes a
// constant). A time-constant upstream gradient reaches either handler as it
// is, (outer, 1, groups).
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "tensorflow/compiler/tf2xla/xla_op_kernel.h"
#include "tensorflow/compiler/tf2xla/xla_op_registry.h"
#include "tensorflow/core/framework/kernel_def_builder.h"
#include "tensorflow/core/framework/node_def_builder.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tf/corr_loss_validate.h"
#include "xla/hlo/builder/xla_builder.h"
#include "xla/layout_util.h"
#include "xla/shape_util.h"
#include "xla/xla_data.pb.h"
#include "xla_ffi/corr_loss_custom_call.h"

namespace corrops {
namespace {

using ::tensorflow::XlaOpKernel;
using ::tensorflow::XlaOpKernelContext;

xla::Shape RowMajor(xla::PrimitiveType type, const Dims& dims) {
  return xla::ShapeUtil::MakeShapeWithDescendingLayout(type, dims);
}

// Reads and checks the compile-time constant eps (input `index`).
::tensorflow::Status ConstantEps(XlaOpKernelContext* ctx, int index, double* eps) {
  TF_RETURN_IF_ERROR(ctx->ConstantInputAsFloatScalar(index, eps));
  return AsStatus(CheckEps(*eps));
}

// One typed-FFI custom call with dense row-major operands and results.
// Sets outputs 0 and 1 of the op to the call's two results.
absl::Status EmitCustomCall(XlaOpKernelContext* ctx, const char* target,
                            const std::vector<xla::XlaOp>& operands,
                            const std::vector<xla::Shape>& results, const std::string& attributes) {
  std::vector<xla::Shape> operand_shapes;
  for (const xla::XlaOp& op : operands) {
    TF_ASSIGN_OR_RETURN(xla::Shape shape, ctx->builder()->GetShape(op));
    xla::LayoutUtil::SetToDefaultLayout(&shape);
    operand_shapes.push_back(shape);
  }
  const xla::XlaOp call = xla::CustomCallWithLayout(
      ctx->builder(), target, operands, xla::ShapeUtil::MakeTupleShape(results), operand_shapes,
      attributes, /*has_side_effect=*/false,
      /*output_operand_aliasing=*/{}, /*literal=*/nullptr, xla::CustomCallSchedule::SCHEDULE_NONE,
      xla::CustomCallApiVersion::API_VERSION_TYPED_FFI);
  ctx->SetOutput(0, xla::GetTupleElement(call, 0));
  ctx->SetOutput(1, xla::GetTupleElement(call, 1));
  return absl::OkStatus();
}

class CorrLossXlaOp : public XlaOpKernel {
 public:
  explicit CorrLossXlaOp(::tensorflow::OpKernelConstruction* ctx) : XlaOpKernel(ctx) {
    ReadAttrs(ctx, &attrs_);
  }

  void Compile(XlaOpKernelContext* ctx) override {
    Layout layout;
    OP_REQUIRES_OK(ctx, ValidateInputs(ctx->InputShape(0), ctx->InputShape(1), ctx->InputShape(2),
                                       attrs_.has_mask, &layout));
    const Dims y_pred = DimsOf(ctx->InputShape(1));
    double eps = 0;
    OP_REQUIRES_OK(ctx, ConstantEps(ctx, 3, &eps));
    const xla::PrimitiveType type = ctx->input_xla_type(1);
    OP_REQUIRES_OK(
        ctx, EmitCustomCall(ctx, kForwardTarget, {ctx->Input(0), ctx->Input(1), ctx->Input(2)},
                            {RowMajor(type, LossDims(layout, y_pred.size())),
                             RowMajor(xla::F64, {layout.outer, layout.inner(), kStatsPerRow})},
                            CustomCallAttributes(attrs_.method, eps, attrs_.has_mask)));
  }

 private:
  OpAttrs attrs_;
};

class CorrLossGradXlaOp : public XlaOpKernel {
 public:
  explicit CorrLossGradXlaOp(::tensorflow::OpKernelConstruction* ctx) : XlaOpKernel(ctx) {
    ReadAttrs(ctx, &attrs_);
  }

  void Compile(XlaOpKernelContext* ctx) override {
    Layout layout;
    OP_REQUIRES_OK(ctx, ValidateInputs(ctx->InputShape(1), ctx->InputShape(2), ctx->InputShape(3),
                                       attrs_.has_mask, &layout));
    const Dims y_pred = DimsOf(ctx->InputShape(2));
    // The forward's loss (input 6) lends its buffer to the TF CPU kernel
    // only; XLA assigns buffers itself. Its shape is still checked. A
    // time-constant grad is passed as it is: both handlers take it.
    bool time_const = false;
    OP_REQUIRES_OK(ctx, ValidateGradInputs(ctx->InputShape(0), ctx->InputShape(4),
                                           ctx->InputShape(6), layout, y_pred.size(), &time_const));
    double eps = 0;
    OP_REQUIRES_OK(ctx, ConstantEps(ctx, 5, &eps));
    const xla::PrimitiveType type = ctx->input_xla_type(2);
    const Dims none{0};
    std::vector<xla::XlaOp> operands;
    for (int i = 0; i < 5; ++i) operands.push_back(ctx->Input(i));
    OP_REQUIRES_OK(ctx, EmitCustomCall(ctx, kBackwardTarget, operands,
                                       {RowMajor(type, attrs_.want_grad_true ? y_pred : none),
                                        RowMajor(type, attrs_.want_grad_pred ? y_pred : none)},
                                       CustomCallAttributes(attrs_.method, eps, attrs_.has_mask)));
  }

 private:
  OpAttrs attrs_;
};

// The XLA JIT devices the lowerings are registered for, passed to Device()
// as a span: with one device a braced list would also match
// Device(string_view), and the call would be ambiguous.
const absl::string_view kXlaDevices[] = {
    ::tensorflow::DEVICE_CPU_XLA_JIT,
#if GOOGLE_CUDA
    ::tensorflow::DEVICE_GPU_XLA_JIT,
#endif
};

REGISTER_XLA_OP(Name("Corrops>CorrLoss")
                    .Device(absl::MakeConstSpan(kXlaDevices))
                    .CompileTimeConstantInput("eps"),
                CorrLossXlaOp);
REGISTER_XLA_OP(Name("Corrops>CorrLossGrad")
                    .Device(absl::MakeConstSpan(kXlaDevices))
                    .CompileTimeConstantInput("eps"),
                CorrLossGradXlaOp);

// TF's XLA bridge makes the kernels of its JIT devices from the XLA op
// registrations once, when it first needs them (TF's first op creates the
// devices). A library loaded after that, as corrops is when the user runs TF
// ops before corrops' first call, finds that list closed: it then registers
// its lowerings as those kernels itself, as the bridge would have.
// Whether the bridge has made them is asked of the kernel registry itself:
// does AddV2 (an op every JIT device compiles) have a kernel on the CPU JIT
// device. TF builds the NodeDef and searches, so no protobuf accessor or
// text format is compiled into corrops.
bool JitKernelsAlreadyMade() {
  ::tensorflow::NodeDef add;
  const auto built = ::tensorflow::NodeDefBuilder("corrops_probe", "AddV2")
                         .Input("x", 0, ::tensorflow::DT_FLOAT)
                         .Input("y", 0, ::tensorflow::DT_FLOAT)
                         .Finalize(&add);
  if (!built.ok()) return false;
  const ::tensorflow::KernelDef* found = nullptr;
  return ::tensorflow::FindKernelDef(::tensorflow::DeviceType(::tensorflow::DEVICE_CPU_XLA_JIT),
                                     add, &found, nullptr)
      .ok();
}

template <typename Kernel>
::tensorflow::OpKernel* Create(::tensorflow::OpKernelConstruction* ctx) {
  return new Kernel(ctx);
}

template <typename Kernel>
void RegisterJitKernel(const char* op, const char* device) {
  const ::tensorflow::DataType types[] = {::tensorflow::DT_HALF, ::tensorflow::DT_BFLOAT16,
                                          ::tensorflow::DT_FLOAT, ::tensorflow::DT_DOUBLE};
  // Registrars live as long as the process, as TF's own.
  new ::tensorflow::kernel_factory::OpKernelRegistrar(
      ::tensorflow::KernelDefBuilder(op).Device(device).TypeConstraint("T", types).Build(),
      "XlaJitOp", &Create<Kernel>);
}

// Runs when the library loads, after the REGISTER_XLA_OPs above.
[[maybe_unused]] const bool kJitKernelsRegistered = [] {
  if (!JitKernelsAlreadyMade()) return false;  // the bridge will make them
  for (const absl::string_view device : kXlaDevices) {
    const std::string name(device);
    RegisterJitKernel<CorrLossXlaOp>("Corrops>CorrLoss", name.c_str());
    RegisterJitKernel<CorrLossGradXlaOp>("Corrops>CorrLossGrad", name.c_str());
  }
  return true;
}();

}  // namespace
}  // namespace corrops
