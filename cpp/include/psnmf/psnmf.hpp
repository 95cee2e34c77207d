// psnmf: Poisson NMF and spatial binning for STEM-EDX spectrum images.
#pragma once

#include "psnmf/binning.hpp"
#include "psnmf/chunked.hpp"
#include "psnmf/convert.hpp"
#include "psnmf/divergence.hpp"
#include "psnmf/matrix_view.hpp"
#include "psnmf/poisson_nmf.hpp"
#include "psnmf/products.hpp"
