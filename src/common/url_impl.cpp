// Boost.URL compiled into the project once (header-only mode), as Boost.JSON is.
#include <boost/url/src.hpp>
