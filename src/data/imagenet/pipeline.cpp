#include "data/imagenet/pipeline.h"

namespace lth::data::imagenet {

void decode_and_transform(const uint8_t* data, size_t size, const TransformSpec& spec, Rng& rng,
                          uint8_t* out, TransformTrace* trace) {
  const ImageInfo info = probe(data, size);
  // The crop needs only the header's size, so it is drawn before decoding: that is what
  // lets the decoder skip resolution the resize would throw away.
  const CropBox crop = spec.train ? train_crop(info.height, info.width, spec.size, rng)
                                  : center_crop(info.height, info.width, spec.size);
  const Scale scale = spec.dct_scaling && info.format == ImageFormat::Jpeg
                          ? choose_scale(crop.width, crop.height, spec.size)
                          : Scale{};
  thread_local RgbImage image;  // reused: a worker allocates only for its largest picture
  decode(data, size, info, scale, image);
  const double f = static_cast<double>(scale.num) / scale.denom;
  const Region region{crop.top * f, crop.left * f, crop.height * f, crop.width * f};
  resize_bicubic(image.pixels.data(), image.height, image.width, region, spec.size, spec.size, out);
  const bool flip = spec.train && rng.coin(0.5);
  if (flip) flip_horizontal(out, spec.size, spec.size);
  if (trace != nullptr) *trace = TransformTrace{info, crop, scale, flip};
}

}  // namespace lth::data::imagenet
