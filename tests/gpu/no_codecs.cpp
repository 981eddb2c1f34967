// For tests/gpu/pack.sh only: the device image of this workplace has no OpenCV, and Debian's
// OpenCV image codecs pull in some 150 MB of libraries (GDAL and more), too much to carry. The
// packed binary links OpenCV's core and imgproc statically and these four functions instead,
// which fail as OpenCV fails (a cv::Exception, which common/cvshim.cpp turns into a status):
// the packed programs read images as PPM (tests/gpu/gpu_check.c) and write none.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace cv {
static void no_codecs() { CV_Error(Error::StsNotImplemented, "image codecs are not linked into this package (tests/gpu/pack.sh)"); }
Mat imread(const String &, int) { no_codecs(); return Mat(); }
Mat imdecode(InputArray, int) { no_codecs(); return Mat(); }
bool imencode(const String &, InputArray, std::vector<uchar> &, const std::vector<int> &) { no_codecs(); return false; }
bool imwrite(const String &, InputArray, const std::vector<int> &) { no_codecs(); return false; }
}  // namespace cv
