// Secrets (migration passwords) are overwritten before their memory is
// released, so no later allocation, swap page or core dump shows them.
#pragma once

#include <string>

namespace ldm {

void wipe(std::string& secret);

}  // namespace ldm
