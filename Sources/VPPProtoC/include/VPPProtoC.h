#include "vpp/rpc/v1/rpc.pb-c.h"
