// The one C++ file: plain C functions over OpenCV. Every entry point catches all exceptions
// (cv::imread throws, for one, on a small file whose header declares an enormous image) and
// turns them into a status with a message.
#include "common/cvshim.h"

#include "common/fileio.h"
#include "common/status.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

const int64_t kMaxPixels = int64_t(1) << 28;

cv::Mat as_mat(const nd_image *img) {
    return cv::Mat(img->height, img->width, img->channels == 1 ? CV_8UC1 : CV_8UC3, img->data);
}

bool valid(const nd_image *img) {
    return img && img->data && img->width > 0 && img->height > 0 && (img->channels == 1 || img->channels == 3);
}

// Copy an OpenCV matrix (gray or BGR) into a freshly allocated RGB/gray nd_image.
int from_mat(const cv::Mat &m, nd_image *out) {
    int ch = m.channels();
    if (ch != 1 && ch != 3) return nd_fail(ND_ERR_FORMAT, "unexpected channel count %d", ch);
    int rc = nd_image_alloc(out, m.cols, m.rows, ch);
    if (rc) return rc;
    cv::Mat dst = as_mat(out);
    if (ch == 3) cv::cvtColor(m, dst, cv::COLOR_BGR2RGB);
    else m.copyTo(dst);
    return ND_OK;
}

cv::Scalar colour(const nd_image *img, const uint8_t rgb[3]) {
    // Our images are RGB in memory, so the channel order given to OpenCV is RGB as well.
    return img->channels == 1 ? cv::Scalar(rgb[0]) : cv::Scalar(rgb[0], rgb[1], rgb[2]);
}

int interp_flag(nd_interp i) {
    switch (i) {
    case ND_INTERP_NEAREST: return cv::INTER_NEAREST;
    case ND_INTERP_AREA: return cv::INTER_AREA;
    default: return cv::INTER_LINEAR;
    }
}

int decoded(const cv::Mat &m, int channels, nd_image *out, const char *what) {
    if (m.empty()) return nd_fail(ND_ERR_FORMAT, "%s: not a readable image (corrupt, truncated or unknown format)", what);
    if (m.depth() != CV_8U) return nd_fail(ND_ERR_FORMAT, "%s: only 8-bit images are supported", what);
    cv::Mat conv = m;
    if (conv.channels() == 4) cv::cvtColor(conv, conv, cv::COLOR_BGRA2BGR);
    if (channels == 1 && conv.channels() == 3) cv::cvtColor(conv, conv, cv::COLOR_BGR2GRAY);
    if (channels == 3 && conv.channels() == 1) cv::cvtColor(conv, conv, cv::COLOR_GRAY2BGR);
    return from_mat(conv, out);
}

int imread_flags(int channels) {
    return channels == 1 ? cv::IMREAD_GRAYSCALE : channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_ANYCOLOR;
}

}  // namespace

#define ND_CATCH(context)                                                                     \
    catch (const cv::Exception &e) {                                                      \
        return nd_fail(ND_ERR_FORMAT, "%s: %s", context, e.msg.c_str());                     \
    }                                                                                     \
    catch (const std::bad_alloc &) {                                                      \
        return nd_fail(ND_ERR_NOMEM, "%s: out of memory", context);                          \
    }                                                                                     \
    catch (const std::exception &e) {                                                     \
        return nd_fail(ND_ERR_FORMAT, "%s: %s", context, e.what());                          \
    }                                                                                     \
    catch (...) {                                                                         \
        return nd_fail(ND_ERR_FORMAT, "%s: unknown image library failure", context);         \
    }

extern "C" {

int nd_image_alloc(nd_image *img, int32_t width, int32_t height, int32_t channels) {
    std::memset(img, 0, sizeof *img);
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) || int64_t(width) * height > kMaxPixels)
        return nd_fail(ND_ERR_INVALID, "image size %dx%dx%d is not supported", width, height, channels);
    img->data = static_cast<uint8_t *>(std::calloc(size_t(width) * size_t(height) * size_t(channels), 1));
    if (!img->data) return nd_fail(ND_ERR_NOMEM, "out of memory for a %dx%d image", width, height);
    img->width = width;
    img->height = height;
    img->channels = channels;
    return ND_OK;
}

void nd_image_free(nd_image *img) {
    if (!img) return;
    std::free(img->data);
    std::memset(img, 0, sizeof *img);
}

int nd_image_copy(const nd_image *src, nd_image *dst) {
    if (!valid(src)) return nd_fail(ND_ERR_INVALID, "copy: empty image");
    int rc = nd_image_alloc(dst, src->width, src->height, src->channels);
    if (rc) return rc;
    std::memcpy(dst->data, src->data, size_t(src->width) * src->height * src->channels);
    return ND_OK;
}

int nd_image_decode(const void *data, size_t len, int channels, nd_image *out) {
    std::memset(out, 0, sizeof *out);
    if (channels != 0 && channels != 1 && channels != 3)
        return nd_fail(ND_ERR_INVALID, "decode: channels must be 0, 1 or 3");
    if (!data || len == 0) return nd_fail(ND_ERR_FORMAT, "empty image data");
    if (len > size_t(INT32_MAX)) return nd_fail(ND_ERR_FORMAT, "image data of %zu bytes is too large", len);
    // OpenCV reads its pixel limit once, from the environment: cap it at ours before the first
    // decode so that a header declaring an enormous image is refused before allocation.
    static const int limit_set = setenv("CV_IO_MAX_IMAGE_PIXELS", "268435456", 0);
    (void)limit_set;
    try {
        cv::Mat buf(1, int(len), CV_8UC1, const_cast<void *>(data));
        cv::Mat m = cv::imdecode(buf, imread_flags(channels));
        if (!m.empty() && int64_t(m.cols) * m.rows > kMaxPixels)
            return nd_fail(ND_ERR_FORMAT, "image of %dx%d pixels is too large", m.cols, m.rows);
        return decoded(m, channels, out, "image data");
    }
    ND_CATCH("image data")
}

int nd_image_read(const char *path, int channels, nd_image *out) {
    char *buf;
    size_t len;
    std::memset(out, 0, sizeof *out);
    int rc = nd_file_read_all(path, &buf, &len);
    if (rc) return rc;
    rc = nd_image_decode(buf, len, channels, out);
    std::free(buf);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    return ND_OK;
}

int nd_image_encode(const nd_image *img, const char *ext, int quality, uint8_t **data, size_t *len) {
    *data = nullptr;
    *len = 0;
    if (!valid(img)) return nd_fail(ND_ERR_INVALID, "encode: empty image");
    try {
        cv::Mat m = as_mat(img), bgr;
        if (img->channels == 3) cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
        else bgr = m;
        std::vector<int> params;
        std::string e(ext ? ext : ".png");
        if (e == ".jpg" || e == ".jpeg" || e == ".JPG" || e == ".JPEG")
            params = {cv::IMWRITE_JPEG_QUALITY, quality > 0 ? quality : 95};
        std::vector<uchar> out;
        if (!cv::imencode(e, bgr, out, params)) return nd_fail(ND_ERR_UNSUPPORTED, "cannot encode as '%s'", e.c_str());
        *data = static_cast<uint8_t *>(std::malloc(out.size() ? out.size() : 1));
        if (!*data) return nd_fail(ND_ERR_NOMEM, "out of memory");
        std::memcpy(*data, out.data(), out.size());
        *len = out.size();
        return ND_OK;
    }
    ND_CATCH("encode")
}

int nd_image_write(const char *path, const nd_image *img, int quality) {
    const char *dot = std::strrchr(path, '.');
    if (!dot || std::strchr(dot, '/')) return nd_fail(ND_ERR_INVALID, "%s: no image extension (.jpg, .png, .bmp)", path);
    uint8_t *data;
    size_t len;
    int rc = nd_image_encode(img, dot, quality, &data, &len);
    if (rc) return nd_fail_context(rc, "%s: ", path);
    rc = nd_file_write_atomic(path, data, len);
    std::free(data);
    return rc;
}

int nd_image_resize(const nd_image *src, int32_t width, int32_t height, nd_interp interp, nd_image *dst) {
    if (!valid(src)) return nd_fail(ND_ERR_INVALID, "resize: empty image");
    int rc = nd_image_alloc(dst, width, height, src->channels);
    if (rc) return rc;
    try {
        cv::Mat out = as_mat(dst);
        cv::resize(as_mat(src), out, out.size(), 0, 0, interp_flag(interp));
        return ND_OK;
    }
    catch (...) {
        nd_image_free(dst);
        return nd_fail(ND_ERR_INVALID, "resize to %dx%d failed", width, height);
    }
}

int nd_image_convert(const nd_image *src, int32_t channels, nd_image *dst) {
    if (!valid(src)) return nd_fail(ND_ERR_INVALID, "convert: empty image");
    if (channels == src->channels) return nd_image_copy(src, dst);
    int rc = nd_image_alloc(dst, src->width, src->height, channels);
    if (rc) return rc;
    try {
        cv::Mat out = as_mat(dst);
        cv::cvtColor(as_mat(src), out, channels == 1 ? cv::COLOR_RGB2GRAY : cv::COLOR_GRAY2RGB);
        return ND_OK;
    }
    catch (...) {
        nd_image_free(dst);
        return nd_fail(ND_ERR_INVALID, "colour conversion failed");
    }
}

int nd_image_crop(const nd_image *src, int32_t x, int32_t y, int32_t w, int32_t h, nd_image *dst) {
    if (!valid(src)) return nd_fail(ND_ERR_INVALID, "crop: empty image");
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > src->width || y + h > src->height)
        return nd_fail(ND_ERR_INVALID, "crop %d,%d %dx%d lies outside a %dx%d image", x, y, w, h, src->width,
                       src->height);
    int rc = nd_image_alloc(dst, w, h, src->channels);
    if (rc) return rc;
    size_t row = size_t(w) * src->channels;
    for (int32_t r = 0; r < h; r++)
        std::memcpy(dst->data + r * row, src->data + (size_t(y + r) * src->width + x) * src->channels, row);
    return ND_OK;
}

int nd_image_warp_affine(const nd_image *src, const double m[6], int32_t width, int32_t height, nd_interp interp,
                         const uint8_t border[3], nd_image *dst) {
    if (!valid(src)) return nd_fail(ND_ERR_INVALID, "warp: empty image");
    int rc = nd_image_alloc(dst, width, height, src->channels);
    if (rc) return rc;
    try {
        cv::Mat M(2, 3, CV_64F, const_cast<double *>(m));
        cv::Mat out = as_mat(dst);
        cv::Scalar b = border ? colour(src, border) : cv::Scalar::all(0);
        cv::warpAffine(as_mat(src), out, M, out.size(), interp_flag(interp), cv::BORDER_CONSTANT, b);
        return ND_OK;
    }
    catch (...) {
        nd_image_free(dst);
        return nd_fail(ND_ERR_INVALID, "affine warp failed");
    }
}

int nd_image_letterbox(const nd_image *src, int32_t width, int32_t height, uint8_t pad, nd_image *dst,
                       double *scale, int32_t *offset_x, int32_t *offset_y) {
    if (!valid(src)) return nd_fail(ND_ERR_INVALID, "letterbox: empty image");
    double s = std::min(double(width) / src->width, double(height) / src->height);
    int32_t w = std::max(1, int32_t(src->width * s + 0.5)), h = std::max(1, int32_t(src->height * s + 0.5));
    w = std::min(w, width);
    h = std::min(h, height);
    nd_image scaled;
    int rc = nd_image_resize(src, w, h, s < 1 ? ND_INTERP_AREA : ND_INTERP_LINEAR, &scaled);
    if (rc) return rc;
    rc = nd_image_alloc(dst, width, height, src->channels);
    if (rc) {
        nd_image_free(&scaled);
        return rc;
    }
    std::memset(dst->data, pad, size_t(width) * height * src->channels);
    int32_t ox = (width - w) / 2, oy = (height - h) / 2;
    size_t row = size_t(w) * src->channels;
    for (int32_t r = 0; r < h; r++)
        std::memcpy(dst->data + (size_t(oy + r) * width + ox) * src->channels, scaled.data + r * row, row);
    nd_image_free(&scaled);
    if (scale) *scale = s;
    if (offset_x) *offset_x = ox;
    if (offset_y) *offset_y = oy;
    return ND_OK;
}

int nd_image_draw_rect(nd_image *img, int32_t x0, int32_t y0, int32_t x1, int32_t y1, const uint8_t rgb[3],
                       int32_t thickness) {
    if (!valid(img)) return nd_fail(ND_ERR_INVALID, "draw: empty image");
    try {
        cv::Mat m = as_mat(img);
        cv::rectangle(m, cv::Point(x0, y0), cv::Point(x1, y1), colour(img, rgb), thickness, cv::LINE_8);
        return ND_OK;
    }
    ND_CATCH("draw rectangle")
}

int nd_image_draw_line(nd_image *img, int32_t x0, int32_t y0, int32_t x1, int32_t y1, const uint8_t rgb[3],
                       int32_t thickness) {
    if (!valid(img)) return nd_fail(ND_ERR_INVALID, "draw: empty image");
    try {
        cv::Mat m = as_mat(img);
        cv::line(m, cv::Point(x0, y0), cv::Point(x1, y1), colour(img, rgb), thickness, cv::LINE_AA);
        return ND_OK;
    }
    ND_CATCH("draw line")
}

int nd_image_draw_dot(nd_image *img, int32_t x, int32_t y, int32_t radius, const uint8_t rgb[3]) {
    if (!valid(img)) return nd_fail(ND_ERR_INVALID, "draw: empty image");
    try {
        cv::Mat m = as_mat(img);
        cv::circle(m, cv::Point(x, y), radius, colour(img, rgb), cv::FILLED, cv::LINE_AA);
        return ND_OK;
    }
    ND_CATCH("draw dot")
}

int nd_image_text_size(const char *text, double scale, int32_t thickness, int32_t *width, int32_t *height,
                       int32_t *baseline) {
    try {
        int base = 0;
        cv::Size s = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &base);
        if (width) *width = s.width;
        if (height) *height = s.height;
        if (baseline) *baseline = base;
        return ND_OK;
    }
    ND_CATCH("text size")
}

int nd_image_draw_text(nd_image *img, const char *text, int32_t x, int32_t y, double scale, const uint8_t rgb[3],
                       int32_t thickness, const uint8_t *background) {
    if (!valid(img)) return nd_fail(ND_ERR_INVALID, "draw: empty image");
    try {
        cv::Mat m = as_mat(img);
        if (background) {
            int base = 0;
            cv::Size s = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &base);
            cv::rectangle(m, cv::Point(x, y - s.height - 2), cv::Point(x + s.width + 2, y + base),
                          colour(img, background), cv::FILLED);
        }
        cv::putText(m, text, cv::Point(x + 1, y), cv::FONT_HERSHEY_SIMPLEX, scale, colour(img, rgb), thickness,
                    cv::LINE_AA);
        return ND_OK;
    }
    ND_CATCH("draw text")
}

}  // extern "C"
