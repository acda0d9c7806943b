//! The MinIO the S3 storage tests use: it starts, serves, and has its bucket.

use athens_e2e::minio::MinioServer;

#[tokio::test]
async fn minio_starts_with_its_bucket() {
    let minio = MinioServer::start().await;
    let status = minio
        .s3_request(reqwest::Method::HEAD, &format!("/{}", minio.bucket))
        .await
        .expect("HEAD bucket");
    assert_eq!(
        status,
        reqwest::StatusCode::OK,
        "HEAD /{} at {}",
        minio.bucket,
        minio.endpoint
    );
    // A bucket that was never created is 404: the 200 above is not just any answer.
    let status = minio
        .s3_request(reqwest::Method::HEAD, "/no-such-bucket")
        .await
        .expect("HEAD");
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
}
