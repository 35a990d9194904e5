// NativeModel: what NativeGru and NativeTransformer share (see muse.hpp): the file they read themselves, its metadata
// and feed(). The kernel each product runs is chosen in native_kernels.hpp's Linear.
#include "detail.hpp"
#include "native_kernels.hpp"

namespace muse {

using namespace native;

NativeModel::NativeModel(const std::string& path, const std::string& expect_sha, const std::string& kind, const std::string& why)
    : ExportedModel(kind), file_(new detail::OnnxFile(detail::read_onnx(path))) {
    const detail::ModelInfo info = native_info(*file_, path, expect_sha, kind, why);
    vocab_ = info.vocab;
    defaults_ = info.defaults;
}

NativeModel::~NativeModel() = default;

std::string NativeModel::metadata(const std::string& key) const { return meta(*file_, key); }

const float* NativeModel::feed(const std::vector<int64_t>& ids) { return feed_steps(*this, ids, vocab_.size()); }

}  // namespace muse
