using System.Buffers;
using System.Text;

namespace IsolateGrains.Engine.Snapshots;

/// <summary>
/// A growable buffer that writes the primitive encodings of the WebAssembly binary format: bytes, LEB128
/// integers, names and whole sections. Always emits the shortest LEB128 encoding.
/// </summary>
internal sealed class WasmBinaryWriter
{
    /// <summary>The bytes written so far.</summary>
    private readonly ArrayBufferWriter<byte> buffer;

    /// <summary>Creates a writer.</summary>
    /// <param name="initialCapacity">
    /// The expected final size: rewriting a module with a memory image of tens of megabytes should not
    /// grow (and copy) the buffer repeatedly.
    /// </param>
    public WasmBinaryWriter(int initialCapacity = 256) => buffer = new ArrayBufferWriter<byte>(Math.Max(initialCapacity, 16));

    /// <summary>The number of bytes written.</summary>
    public int Length => buffer.WrittenCount;

    /// <summary>The bytes written so far.</summary>
    public ReadOnlySpan<byte> WrittenSpan => buffer.WrittenSpan;

    /// <summary>Writes one byte.</summary>
    /// <param name="value">The byte.</param>
    public void WriteByte(byte value)
    {
        buffer.GetSpan(1)[0] = value;
        buffer.Advance(1);
    }

    /// <summary>Writes raw bytes.</summary>
    /// <param name="bytes">The bytes.</param>
    public void WriteBytes(ReadOnlySpan<byte> bytes) => buffer.Write(bytes);

    /// <summary>Writes an unsigned LEB128 <c>u32</c> (sizes, counts, indices).</summary>
    /// <param name="value">The value.</param>
    public void WriteVarUInt32(uint value) => WriteVarUInt64(value);

    /// <summary>Writes an unsigned LEB128 <c>u64</c>.</summary>
    /// <param name="value">The value.</param>
    public void WriteVarUInt64(ulong value)
    {
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            WriteByte(value != 0 ? (byte)(b | 0x80) : b);
        }
        while (value != 0);
    }

    /// <summary>
    /// Writes a signed LEB128 <c>s32</c> (the immediate of <c>i32.const</c>). An address at or above 2 GiB must
    /// be passed as the negative <see cref="int"/> with the same bits: that is how the format encodes it.
    /// </summary>
    /// <param name="value">The value.</param>
    public void WriteVarInt32(int value) => WriteVarInt64(value);

    /// <summary>Writes a signed LEB128 <c>s64</c> (the immediate of <c>i64.const</c>).</summary>
    /// <param name="value">The value.</param>
    public void WriteVarInt64(long value)
    {
        while (true)
        {
            var b = (byte)(value & 0x7F);
            value >>= 7; // arithmetic shift: keeps the sign
            // Done once the rest is a pure sign extension of the 7 bits just taken.
            var done = (value == 0 && (b & 0x40) == 0) || (value == -1 && (b & 0x40) != 0);
            WriteByte(done ? b : (byte)(b | 0x80));
            if (done)
            {
                return;
            }
        }
    }

    /// <summary>Writes a name: its UTF-8 length, then its UTF-8 bytes.</summary>
    /// <param name="name">The name.</param>
    public void WriteName(string name)
    {
        var bytes = Encoding.UTF8.GetBytes(name);
        WriteVarUInt32((uint)bytes.Length);
        WriteBytes(bytes);
    }

    /// <summary>Writes a whole section: identifier, payload size and payload.</summary>
    /// <param name="id">The section identifier.</param>
    /// <param name="payload">The section content.</param>
    public void WriteSection(WasmSectionId id, ReadOnlySpan<byte> payload)
    {
        WriteByte((byte)id);
        WriteVarUInt32((uint)payload.Length);
        WriteBytes(payload);
    }

    /// <summary>Copies the bytes written into a new array.</summary>
    public byte[] ToArray() => buffer.WrittenSpan.ToArray();
}
