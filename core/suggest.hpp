// "Did you mean" for names a user typed: the closest candidate by edit distance.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace kiln {

// The candidate closest to |name| (Levenshtein distance, ties to the first), when it is close
// enough to be a typo: at most 1 edit for names up to 4 characters, 2 up to 8, 3 beyond. Empty
// when none is.
std::string closest_name(std::string_view name, std::span<const std::string_view> candidates);
// "; did you mean 'sigmoid'?" or "" (to append to an error message).
std::string did_you_mean(std::string_view name, std::span<const std::string_view> candidates);

}  // namespace kiln
