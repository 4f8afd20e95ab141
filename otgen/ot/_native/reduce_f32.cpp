// One dtype of reduce.cpp per translation unit (the install-time build, setup.py).
#define OTG_F32
#include "reduce.cpp"
