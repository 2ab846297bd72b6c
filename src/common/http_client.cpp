#include "common/http_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <stdexcept>

namespace sluice::cli {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

HttpResult http_request(const std::string& url, const std::string& method,
                        const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        const std::string& body) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed || parsed->scheme() != "http" || parsed->host().empty())
    throw std::runtime_error("the endpoint URL must be http://HOST:PORT, not \"" + url + "\"");
  const std::string host = parsed->host();
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : "80";
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.connect(resolver.resolve(host, port));
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, host + ":" + port);
    request.set(http::field::user_agent, "sluice-cli");
    for (const auto& [name, value] : headers) request.set(name, value);
    request.body() = body;
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    HttpResult result;
    result.status = static_cast<int>(response.result_int());
    result.content_type = std::string(response[http::field::content_type]);
    result.error_type = std::string(response["x-amzn-ErrorType"]);
    result.error_type = result.error_type.substr(0, result.error_type.find(':'));
    result.body = response.body();
    for (const auto& field : response) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    return result;
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("cannot reach the sluice API at " + url + ": " + e.code().message());
  }
}

}  // namespace sluice::cli
