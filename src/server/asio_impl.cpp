// SPDX-License-Identifier: Apache-2.0
// The one translation unit that compiles Asio and Beast (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION are set for every user of stowage_server), so that the other
// server files include only declarations and build quickly.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
