// Boost.JSON compiled into the project once (header-only mode), instead of per use.
#include <boost/json/src.hpp>
